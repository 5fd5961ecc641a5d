// Rehearsal: while the learner fine-tunes a trained version, it adds recorded episodes of the
// data that version learned from to the replay beside the online transitions — each one's stage-1
// chain to the end of the run and its hindsight verdicts (episodes/hindsight.ts) — so the network
// keeps seeing the states the online policy no longer visits. The recorded episodes are the
// training split of learning.heldOutData (the held-out set is its test split, so nothing judged is
// rehearsed). Measured offline with the starter model fine-tuned on greedy online-like data at
// learning rate 1e-5 (balanced accuracy of the weight average on 200 held-out episodes, after
// 1,000–4,000 updates): 0.81–0.82 without rehearsal, 0.83–0.84 with it (0.835 in service);
// `npm run bench -- finetune` compares the defaults with online learning as it was.

import type { WardenConfig } from '../../config/schema.ts';
import { loadTraces } from '../../data/load-traces.ts';
import { splitTraces } from '../../data/split.ts';
import type { Experience } from '../../messages/experience.ts';
import type { RecordedTrace } from '../../messages/recorded.ts';
import type { ReplayStorage } from '../../runtime/shared/replay-storage.ts';
import { alternatingLabels, BUNDLED_HELD_OUT } from '../../training/held-out.ts';
import { hindsightChain } from '../../training/train.ts';
import { hindsightVerdicts } from '../episodes/hindsight.ts';

/** Replay episode ids of rehearsed episodes: negative, clear of the episodes actor's. */
const REHEARSAL_EPISODES = -(1 << 30);

/** One recorded episode as replay ranges: its CONTINUE chain, then its hindsight verdicts. */
export function rehearsalRanges(
  traces: readonly RecordedTrace[],
  config: WardenConfig,
): Experience[][][] {
  const cfg = {
    dim: config.telemetry.stateDim,
    horizon: config.telemetry.horizon,
    rewards: config.rewards,
  };
  return traces.flatMap((trace, i) => {
    if (trace.episode.label === 'unknown') return [];
    const id = REHEARSAL_EPISODES + i;
    const chain = hindsightChain(trace, cfg, id);
    if (chain.length === 0) return [];
    const verdicts = hindsightVerdicts(
      chain.map((e) => e.state),
      trace.episode.label,
      config.rewards,
      config.learning.hindsightStates,
      id,
      1,
    );
    return [[chain, verdicts]];
  });
}

/** The training split of learning.heldOutData, up to learning.rehearsalEpisodes, both labels alternating. */
export async function loadRehearsal(config: WardenConfig): Promise<Experience[][][]> {
  const n = config.learning.rehearsalEpisodes;
  if (n === 0 || config.learning.rehearsalShare === 0) return [];
  const traces = splitTraces(
    await loadTraces(config.learning.heldOutData ?? BUNDLED_HELD_OUT),
    'train',
  );
  const chosen = alternatingLabels(traces, n);
  return rehearsalRanges(chosen, config);
}

/** Keeps the rehearsed share of the replay's intake at `share`, cycling through the episodes. */
export class Rehearsal {
  readonly #episodes: Experience[][][];
  #next = 0;
  /** Transitions this rehearsal appended. */
  appended = 0;

  constructor(episodes: Experience[][][]) {
    this.#episodes = episodes;
  }

  get size(): number {
    return this.#episodes.length;
  }

  /**
   * Appends rehearsed episodes until they are `share` of everything appended since the start
   * (`online` is what the others appended). Returns the transitions added now.
   */
  topUp(replay: ReplayStorage, online: number, share: number): number {
    if (this.#episodes.length === 0 || share <= 0) return 0;
    const wanted = (online * share) / (1 - share);
    let added = 0;
    while (this.appended < wanted) {
      const ranges = this.#episodes[this.#next]!;
      this.#next = (this.#next + 1) % this.#episodes.length;
      let n = 0;
      for (const range of ranges) n += replay.append(range);
      if (n === 0) break;
      this.appended += n;
      added += n;
    }
    return added;
  }
}
