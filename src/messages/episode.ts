// Episode lifecycle: stages, what a sandbox reports when a stage starts, ends or fails.

import type { ArtifactType } from './telemetry.ts';

/** 1 = positive sandbox (false-positive check), 2 = negative sandbox (false-negative check). */
export const STAGES = [1, 2] as const;
export type Stage = (typeof STAGES)[number];

export type Label = 'malicious' | 'benign' | 'unknown';

export interface EpisodeStarted {
  readonly type: 'episode-started';
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  readonly timestamp: number;
  readonly artifactHash: string;
  readonly artifactType: ArtifactType;
  /** Whether stage 1 cleaned the file before it reached this stage (stage 2 only). */
  readonly cleaned: boolean;
  /** W3C traceparent of the episode span, added by the adapter when tracing is on. */
  readonly trace?: string;
}

/** What the sandbox knows when a stage ends: its own verdicts and, when known, the truth. */
export interface StageOutcome {
  readonly type: 'stage-outcome';
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  readonly timestamp: number;
  readonly eventsObserved: number;
  readonly sandboxDetected: boolean;
  readonly cleaned: boolean;
  readonly cleaningSucceeded: boolean;
  readonly groundTruth: Label;
  /** Family or signature label when the sandbox reports one. */
  readonly family: string | null;
}

export interface StageFailed {
  readonly type: 'stage-failed';
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  readonly timestamp: number;
  readonly reason: 'sandbox-crash' | 'stream-cut' | 'timeout' | 'refused' | 'other';
  readonly detail: string;
}

export type EpisodeLifecycle = EpisodeStarted | StageOutcome | StageFailed;
