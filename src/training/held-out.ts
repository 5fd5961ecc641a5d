// A fixed held-out set for judging every version the learner exports (requirement 7.5): the test
// side of the shared split (data/split.ts) of learning.heldOutData, the first heldOutEpisodes of
// them. The same episodes for every version, so a drop between versions is forgetting, not noise
// of a different sample.

import type { DegradationAlert } from '../actors/episodes/degradation.ts';
import { chooseAction } from '../actors/inference/decide.ts';
import { createPredictor } from '../actors/learner/ort-engine.ts';
import { forward, type QNetParams } from '../actors/learner/q-network.ts';
import type { WardenConfig } from '../config/schema.ts';
import { loadTraces } from '../data/load-traces.ts';
import { splitTraces } from '../data/split.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import { batchedPolicy, type DetectionReport, evaluatePolicy } from './evaluate.ts';

export const BUNDLED_HELD_OUT = new URL(
  '../../data/oliveira-balanced/api_calls.csv',
  import.meta.url,
).pathname;

export async function loadHeldOut(config: WardenConfig): Promise<RecordedTrace[]> {
  const n = config.learning.heldOutEpisodes;
  if (n === 0) return [];
  const traces = splitTraces(
    await loadTraces(config.learning.heldOutData ?? BUNDLED_HELD_OUT),
    'test',
  );
  return alternatingLabels(traces, n);
}

/** Up to `n` labelled traces, malicious and benign alternating, so a small set is balanced. */
export function alternatingLabels(traces: readonly RecordedTrace[], n: number): RecordedTrace[] {
  const mal = traces.filter((t) => t.episode.label === 'malicious');
  const ben = traces.filter((t) => t.episode.label === 'benign');
  const out: RecordedTrace[] = [];
  for (let i = 0; out.length < n && (i < mal.length || i < ben.length); i++) {
    if (i < mal.length) out.push(mal[i]!);
    if (i < ben.length && out.length < n) out.push(ben[i]!);
  }
  return out;
}

/**
 * Greedy stage-1 detection of `params` on the held-out set. Plain networks run through ONNX
 * Runtime, all episodes in step and one batch of states per step: 200 episodes took 1.9 s one
 * state at a time in JavaScript (the forward pass 83% of it), on the learner's thread at every
 * export. Dueling networks take the JavaScript path.
 */
export async function evaluateParams(
  params: QNetParams,
  traces: readonly RecordedTrace[],
  config: WardenConfig,
): Promise<DetectionReport> {
  const cfg = {
    dim: config.telemetry.stateDim,
    horizon: config.telemetry.horizon,
    rewards: config.rewards,
  };
  if (params.dueling)
    return evaluatePolicy(
      traces,
      (state) => {
        const q = forward(params, state, 1);
        return { action: chooseAction(q, 0, config.inference.verdictMargin), qValues: q };
      },
      cfg,
    );
  const predictor = await createPredictor(params);
  try {
    return await evaluatePolicy(
      traces,
      batchedPolicy(predictor.predict, cfg.dim, config.inference.verdictMargin),
      cfg,
      {
        concurrent: true,
      },
    );
  } finally {
    predictor.dispose();
  }
}

/** One exported version's result on the held-out set. */
export interface HeldOutResult {
  readonly version: string;
  readonly accuracy: number;
  readonly auc: number;
  readonly reward: number;
  readonly episodes: number;
}

/**
 * Forgetting made visible (requirement 7.5): a version whose held-out balanced accuracy fell
 * more than `maxDrop` below the version before it gives a degradation alert (source held-out).
 */
export function forgetting(
  previous: HeldOutResult | undefined,
  current: HeldOutResult,
  maxDrop: number,
): DegradationAlert | undefined {
  if (!previous || previous.accuracy - current.accuracy <= maxDrop) return undefined;
  return {
    type: 'model-degraded',
    source: 'held-out',
    version: current.version,
    previousVersion: previous.version,
    accuracy: current.accuracy,
    previousAccuracy: previous.accuracy,
    averageReward: current.reward,
    previousAverageReward: previous.reward,
    episodes: current.episodes,
  };
}
