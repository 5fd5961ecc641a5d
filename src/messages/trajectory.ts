// A whole episode as stored for other systems (requirement 10.4, properties 43, 44): every
// transition of both stages, with a partial flag and failure reason when a stage failed.

import type { ActionId } from './action.ts';
import type { Label, Stage } from './episode.ts';

/**
 * One transition. Its next state is the next step's state in the same stage (its own at the
 * stage's last step), so it is not stored twice: PostgreSQL's view `trajectory_transitions`
 * gives every row with its `next_state`. The steps of a stage are stored as one row of
 * `trajectory_stages` (migration 10).
 */
export interface TrajectoryStep {
  readonly stage: Stage;
  readonly step: number;
  /** The decision's own copy from the episodes actor; a number[] once read back from JSON. */
  readonly state: Float32Array | readonly number[];
  readonly action: ActionId;
  readonly reward: number;
  readonly done: boolean;
}

export interface EpisodeTrajectory {
  readonly type: 'episode-trajectory';
  readonly episodeId: string;
  readonly label: Label;
  readonly partial: boolean;
  readonly failureReason: string | null;
  /** The sandbox's hash of the analysed file (a hash of a user's file: encryptable). */
  readonly artifactHash?: string | null;
  /** W3C traceparent of the episode span, when tracing is on (the DB write joins the trace). */
  readonly trace?: string;
  readonly modelVersion: string;
  readonly totalReward: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly steps: readonly TrajectoryStep[];
}
