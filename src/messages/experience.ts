// One transition for the replay storage (seed: state, action, reward, next_state, done).

import type { ExperienceRow } from '../cluster/experiences.ts';
import type { ActionId } from './action.ts';
import type { Stage } from './episode.ts';

export interface Experience {
  readonly state: Float32Array;
  readonly action: ActionId;
  readonly reward: number;
  readonly nextState: Float32Array;
  readonly done: boolean;
  /** Numeric id of the episode (the replay stores ids as int32; see replay-storage.ts). */
  readonly episode: number;
  readonly stage: Stage;
}

/**
 * Transitions of one episode stage for the shared experiences table (scale-out: an inference host
 * hands them to its DB writer; the learner host reads them back in order).
 */
export interface ExperienceRows {
  readonly type: 'experience-rows';
  readonly rows: readonly ExperienceRow[];
}

export interface ExperienceBatch {
  readonly type: 'experience-batch';
  readonly episodeId: string;
  readonly modelVersion: string;
  readonly experiences: readonly Experience[];
}
