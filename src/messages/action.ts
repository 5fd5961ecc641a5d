// Containment actions (DESIGN §1) and the context each one carries to the sandbox (property 20).

import type { Stage } from './episode.ts';

export const ACTIONS = {
  CONTINUE: 0,
  RAISE_ISOLATION: 1,
  TERMINATE: 2,
  QUARANTINE: 3,
  REQUEST_REVIEW: 4,
  RELEASE: 5,
} as const;
export type ActionName = keyof typeof ACTIONS;
export type ActionId = (typeof ACTIONS)[ActionName];
export const ACTION_COUNT = 6;
export const ACTION_NAMES: readonly ActionName[] = [
  'CONTINUE',
  'RAISE_ISOLATION',
  'TERMINATE',
  'QUARANTINE',
  'REQUEST_REVIEW',
  'RELEASE',
];
/** An action id as people read it: 'raise-isolation' (an id outside the six: 'action 7'). */
export const actionLabel = (a: number): string =>
  ACTION_NAMES[a]?.toLowerCase().replace('_', '-') ?? `action ${a}`;
/** TERMINATE, QUARANTINE, REQUEST_REVIEW and RELEASE end a stage. */
export const STAGE_ENDING_ACTIONS: readonly ActionId[] = [2, 3, 4, 5];
/** A malicious verdict makes stage 1 clean the file. */
export const MALICIOUS_VERDICTS: readonly ActionId[] = [2, 3];

export type DecisionSource = 'model' | 'rules' | 'exploration';

export interface FeatureWeight {
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly weight: number;
}

/** Why the action was chosen: the rationale the sandbox receives with it. */
export interface ActionContext {
  readonly modelVersion: string;
  readonly qValues: readonly number[];
  readonly confidence: number;
  readonly source: DecisionSource;
  readonly topFeatures: readonly FeatureWeight[];
}

export interface ActionDecision {
  readonly type: 'action-decision';
  readonly actionId: string;
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  /** The telemetry seq the decision was made after. */
  readonly seq: number;
  readonly action: ActionId;
  readonly context: ActionContext;
  readonly decidedAt: number;
  /** W3C traceparent of the episode's stage span, when tracing is on (runtime/tracing.ts). */
  readonly trace?: string;
}
