// What comes back from a sandbox after an action: confirmation, feedback, or a failed delivery.

import type { ActionId } from './action.ts';
import type { Stage } from './episode.ts';
import { RecordCodec } from './packed-records.ts';

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

/** Feedback in batches from the dispatcher to the episodes actor (packed-records.ts). */
export const ACTION_FEEDBACK = new RecordCodec<ActionFeedback>([
  ['type', 'string'],
  ['actionId', 'string'],
  ['sandboxId', 'string'],
  ['episodeId', 'string'],
  ['stage', 'number'],
  ['action', 'number'],
  ['confirmed', 'boolean'],
  ['applied', 'boolean'],
  ['stageEnded', 'boolean'],
  ['detail', 'string'],
  ['timestamp', 'number'],
]);

/** Failed deliveries in batches from the dispatcher to the episodes actor: one per failed batch. */
export const ACTION_FAILURES = new RecordCodec<ActionFailed>([
  ['type', 'string'],
  ['actionId', 'string'],
  ['sandboxId', 'string'],
  ['episodeId', 'string'],
  ['attempts', 'number'],
  ['lastError', 'string'],
  ['timestamp', 'number'],
]);
