// Every message type in one place; actors import from here.

export * from './action.ts';
export * from './control.ts';
export * from './episode.ts';
export * from './experience.ts';
export * from './feedback.ts';
export * from './model.ts';
export * from './pattern.ts';
export * from './telemetry.ts';
export * from './trajectory.ts';

import type { ActionDecision } from './action.ts';
import type { EpisodeLifecycle } from './episode.ts';
import type { DispatchResult } from './feedback.ts';
import type { TelemetryEvent } from './telemetry.ts';

/** What a sandbox stream yields, after validation. */
export type SandboxEvent = TelemetryEvent | EpisodeLifecycle;
/** What flows between the receiver, inference, dispatcher and episodes actors. */
export type DecisionMessage = ActionDecision | DispatchResult;
