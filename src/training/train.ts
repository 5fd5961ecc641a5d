// Offline training (`warden train`): replays recorded episodes through the two-stage workflow,
// acting epsilon-greedily with the policy network, storing every transition of both stages in
// the replay storage together with the trace's hindsight transitions (below), and updating the
// network with the DQN learner after each episode. The model it returns is, by default of the
// CLI, the mean of the weights over the last two thirds of training (weight-average.ts).

import { StateAccumulator } from '../actors/adapter/state-vector.ts';
import { VERDICT_ACTIONS, verdictTransition } from '../actors/episodes/hindsight.ts';
import { stepCost, verdictReward } from '../actors/episodes/rewards.ts';
import {
  type Decision,
  type EpisodeResult,
  runEpisode,
  type StageConfig,
} from '../actors/episodes/two-stage.ts';
import { DqnLearner, type DqnLogger, type TrainingMetrics } from '../actors/learner/dqn.ts';
import { ADAM, type DqnEngine, type EngineOptions } from '../actors/learner/engine.ts';
import { hyperParameters, sampleOptions } from '../actors/learner/hyper-parameters.ts';
import { OrtEngine } from '../actors/learner/ort-engine.ts';
import { initParams, type QNetParams, seededRandom } from '../actors/learner/q-network.ts';
import { TfjsEngine } from '../actors/learner/tfjs-engine.ts';
import type { WardenConfig } from '../config/schema.ts';
import { ACTIONS, type ActionId } from '../messages/action.ts';
import type { Experience } from '../messages/experience.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import { ReplayStorage } from '../runtime/shared/replay-storage.ts';
import { argmax } from './evaluate.ts';
import { WeightAverage } from './weight-average.ts';

export type EngineChoice = 'auto' | 'ort' | 'tfjs';

export interface TrainOptions {
  readonly traces: readonly RecordedTrace[];
  readonly config: WardenConfig;
  readonly episodes: number;
  readonly engine?: EngineChoice;
  readonly seed?: number;
  /** Continue from these weights (incremental learning) instead of a fresh network. */
  readonly initial?: QNetParams;
  /** Network updates per stored transition (DQN's classic 1 per 4 steps = 0.25). */
  readonly updatesPerStep?: number;
  readonly cleanSuccessRate?: number;
  /** Probability that an exploratory action is CONTINUE (uniform exploration ends most stages at once). */
  readonly exploreContinue?: number;
  /** Hindsight transitions from the labelled traces (hindsightTransitions below); on by default. */
  readonly hindsight?: boolean;
  /**
   * Weight averaging: from this episode on, a snapshot of the weights every `averageEvery`
   * episodes (default 10), and the result is their mean (weight-average.ts). Without it the
   * result is the last weights.
   */
  readonly averageFrom?: number;
  readonly averageEvery?: number;
  readonly onProgress?: (point: TrainPoint) => void;
  readonly progressEvery?: number;
  readonly log?: DqnLogger;
}

export interface TrainPoint {
  readonly episode: number;
  readonly epsilon: number;
  readonly loss: number;
  readonly averageReward: number;
  /** Rolling (last 100 episodes) stage-1 detection rates. */
  readonly tpr: number;
  readonly fpr: number;
  readonly updates: number;
  readonly samplesPerSecond: number;
}

export interface TrainResult {
  readonly params: QNetParams;
  readonly engine: string;
  readonly history: TrainPoint[];
  readonly metrics: TrainingMetrics;
  readonly transitions: number;
  readonly seconds: number;
  readonly finalReward: number;
  /** Set when `params` is a weight average: the episodes it spans and how many snapshots. */
  readonly averaged?: { readonly from: number; readonly to: number; readonly snapshots: number };
}

export async function createEngine(
  params: QNetParams,
  config: WardenConfig,
  choice: EngineChoice = 'auto',
): Promise<DqnEngine> {
  const opts: EngineOptions = {
    learningRate: config.learning.learningRate,
    loss: config.learning.loss,
    doubleDqn: config.learning.doubleDqn,
    gradClip: config.learning.gradClip,
    adam: ADAM,
  };
  // ONNX Runtime runs the same step about 10× faster; TensorFlow.js serves dueling heads.
  if (choice === 'ort' || (choice === 'auto' && !params.dueling))
    return OrtEngine.create(params, opts);
  return TfjsEngine.create(params, opts);
}

/** Replay episode ids of hindsight chains: above those of the played episodes. */
const HINDSIGHT_EPISODES = 1 << 30;

/**
 * Hindsight: a recorded trace's label tells what every verdict would have earned at every step,
 * so stage 1 of the whole trace goes into the replay too — the chain of CONTINUE steps to the end
 * of the run (where the file is released), and at every step each verdict as its own one-step
 * episode with the reward it would have earned. Exploration alone ends most stages in a few
 * steps, so the later states were seldom seen and waiting was never learned: the agent decided
 * after 2–6 calls. On the Oliveira split (1,500 episodes, seeds 1 and 2) held-out balanced
 * accuracy went from 0.64–0.67 to 0.76, with decisions after 7–16 calls; 20× more updates
 * without hindsight did not do it (0.65–0.67).
 */
export function hindsightTransitions(
  trace: RecordedTrace,
  cfg: StageConfig,
  firstEpisode: number,
): Experience[][] {
  const chain = hindsightChain(trace, cfg, firstEpisode);
  let episode = firstEpisode + 1;
  const verdicts = chain.flatMap(({ state }) =>
    VERDICT_ACTIONS.map((action) => [
      verdictTransition(state, action, trace.episode.label, cfg.rewards, episode++, 1),
    ]),
  );
  return chain.length > 0 ? [chain, ...verdicts] : [];
}

/**
 * Stage 1 of a whole recorded trace as one episode: a CONTINUE step per event (up to the horizon)
 * and the release at its end with the reward the trace's label gives it.
 */
export function hindsightChain(
  trace: RecordedTrace,
  cfg: StageConfig,
  episode: number,
): Experience[] {
  const label = trace.episode.label;
  const acc = new StateAccumulator(cfg.dim, cfg.horizon);
  const states: Float32Array[] = [];
  for (const e of trace.events.slice(0, cfg.horizon)) {
    acc.add(e);
    states.push(acc.vector(1, 0, false));
  }
  const r = cfg.rewards;
  return states.map((state, i) => {
    const last = i === states.length - 1;
    return {
      state,
      nextState: states[i + 1] ?? state,
      action: ACTIONS.CONTINUE,
      reward: stepCost(ACTIONS.CONTINUE, r) + (last ? verdictReward('benign', label, r) : 0),
      done: last,
      episode,
      stage: 1,
    };
  });
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const { config } = o;
  const started = performance.now();
  const seed = o.seed ?? 1;
  const rand = seededRandom(seed);
  const dim = config.telemetry.stateDim;
  const dims = [dim, ...config.learning.hiddenUnits, 6];
  const params = o.initial ?? initParams(dims, config.learning.dueling, seed);
  const engine = await createEngine(params, config, o.engine);
  const replay = new ReplayStorage(
    ReplayStorage.create({
      capacity: Math.max(10_000, Math.min(config.replay.capacity, 500_000)),
      dim,
    }).buffer,
    seed,
  );
  const hp = hyperParameters(config);
  const learner = new DqnLearner(
    engine,
    hp,
    sampleOptions(config),
    replay,
    o.log ?? { warn: () => undefined },
  );
  const stageCfg: StageConfig = { dim, horizon: config.telemetry.horizon, rewards: config.rewards };
  const benign = o.traces.filter((t) => t.episode.label === 'benign');
  const env = { cleanSuccessRate: o.cleanSuccessRate ?? 0.9, benign, seed };
  const updatesPerStep = o.updatesPerStep ?? 0.25;
  const exploreContinue = o.exploreContinue ?? 0.9;
  const history: TrainPoint[] = [];
  const recent: { predicted: boolean; malicious: boolean }[] = [];
  let transitions = 0;
  let lastReward = 0;
  let hindsightEpisode = HINDSIGHT_EPISODES;
  const average = new WeightAverage();
  const averageEvery = Math.max(1, Math.floor(o.averageEvery ?? 10));

  for (let episode = 0; episode < o.episodes; episode++) {
    const trace = o.traces[Math.floor(rand() * o.traces.length)]!;
    const epsilon = learner.epsilon;
    const policy = async (state: Float32Array): Promise<Decision> => {
      if (rand() < epsilon) {
        const action = (
          rand() < exploreContinue ? ACTIONS.CONTINUE : 1 + Math.floor(rand() * 5)
        ) as ActionId;
        return { action, qValues: [0, 0, 0, 0, 0, 0] };
      }
      const q = await engine.predict(state, 1);
      return { action: argmax(q), qValues: q };
    };
    const result: EpisodeResult = await runEpisode(trace, policy, stageCfg, env, episode);
    const stored = replay.append([...result.stage1.transitions, ...result.stage2.transitions]);
    transitions += stored;
    let hindsightSteps = 0;
    if (o.hindsight !== false && trace.episode.label !== 'unknown') {
      const episodes = hindsightTransitions(trace, stageCfg, hindsightEpisode);
      // Ids stay in int32 (the replay's column) and clear of the played episodes'.
      hindsightEpisode =
        HINDSIGHT_EPISODES + ((hindsightEpisode - HINDSIGHT_EPISODES + episodes.length) % 2 ** 29);
      // Each range on its own: n-step returns follow one episode's contiguous slots.
      for (const range of episodes) transitions += replay.append(range);
      hindsightSteps = episodes[0]?.length ?? 0;
    }
    learner.episodeFinished(result.reward);
    lastReward = result.reward;
    if (trace.episode.label !== 'unknown') {
      recent.push({
        predicted: result.stage1.verdict !== 'benign',
        malicious: trace.episode.label === 'malicious',
      });
      if (recent.length > 100) recent.shift();
    }
    const updates = Math.max(1, Math.round((stored + hindsightSteps) * updatesPerStep));
    for (let u = 0; u < updates; u++) await learner.update();

    const every = o.progressEvery ?? 25;
    if ((episode + 1) % every === 0 || episode === o.episodes - 1) {
      const m = learner.metrics();
      const mal = recent.filter((r) => r.malicious);
      const ben = recent.filter((r) => !r.malicious);
      const point: TrainPoint = {
        episode: episode + 1,
        epsilon: m.epsilon,
        loss: m.loss,
        averageReward: m.averageReward,
        tpr: mal.length ? mal.filter((r) => r.predicted).length / mal.length : 0,
        fpr: ben.length ? ben.filter((r) => r.predicted).length / ben.length : 0,
        updates: m.updates,
        samplesPerSecond: m.samplesPerSecond,
      };
      history.push(point);
      o.onProgress?.(point);
    }
    const done = episode + 1;
    if (
      o.averageFrom !== undefined &&
      done >= o.averageFrom &&
      ((done - o.averageFrom) % averageEvery === 0 || done === o.episodes)
    )
      average.add(engine.getParams());
  }
  const mean = average.mean();
  const result: TrainResult = {
    params: mean ?? engine.getParams(),
    engine: engine.name,
    history,
    metrics: learner.metrics(),
    transitions,
    seconds: (performance.now() - started) / 1000,
    finalReward: lastReward,
    // The last episode always takes a snapshot, so an average spans averageFrom to the end.
    ...(mean && o.averageFrom !== undefined
      ? { averaged: { from: o.averageFrom, to: o.episodes, snapshots: average.count } }
      : {}),
  };
  engine.dispose();
  return result;
}
