// What comes back from a sandbox after an action: confirmation, feedback, or a failed delivery.

import type { ActionId } from './action.ts';
import type { Stage } from './episode.ts';

export interface ActionFeedback {
  readonly type: 'action-feedback';
  readonly actionId: string;
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  readonly action: ActionId;
  readonly confirmed: boolean;
  /** The sandbox's observation after applying the action (e.g. process terminated, file cleaned). */
  readonly applied: boolean;
  readonly stageEnded: boolean;
  readonly detail: string;
  readonly timestamp: number;
}

export interface ActionFailed {
  readonly type: 'action-failed';
  readonly actionId: string;
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly attempts: number;
  readonly lastError: string;
  readonly timestamp: number;
}

export type DispatchResult = ActionFeedback | ActionFailed;
