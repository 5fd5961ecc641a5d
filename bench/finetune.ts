// Online fine-tuning of a trained model, offline and deterministic: what the learner actor does to
// the bundled starter model between two exports, without the sandboxes, gRPC or the other actors.
// The served policy is the starter (greedy, as the inference pool serves it); it plays recorded
// traces of the training split through the two-stage workflow; the transitions go to a replay as
// the episodes actor stores them, and a DqnLearner learns from it at the live pace (about 0.012
// updates per transition on this machine: ~80 updates/s for ~7,000 transitions/s). Every
// `every` updates the held-out balanced accuracy of the last weights and of their mean (a
// snapshot every 100 updates) is printed. A quality measurement, not a timing: the baseline in the
// same run is online learning as it was before the resume rate, hindsight and rehearsal.
//
// npm run bench -- finetune [updates] [every]      # default 3000, 1000

import { readFileSync } from 'node:fs';
import { hindsightVerdicts } from '../src/actors/episodes/hindsight.ts';
import { runEpisode } from '../src/actors/episodes/two-stage.ts';
import { DqnLearner } from '../src/actors/learner/dqn.ts';
import { hyperParameters, sampleOptions } from '../src/actors/learner/hyper-parameters.ts';
import { forward, seededRandom } from '../src/actors/learner/q-network.ts';
import { loadRehearsal, Rehearsal } from '../src/actors/learner/rehearsal.ts';
import type { WardenConfig } from '../src/config/schema.ts';
import { validateConfig } from '../src/config/validate.ts';
import { loadTraces } from '../src/data/load-traces.ts';
import { splitTraces } from '../src/data/split.ts';
import { readPolicyParams } from '../src/models/read-params.ts';
import { STARTER_DIR } from '../src/models/starter.ts';
import { latestVersion, modelFile } from '../src/models/store.ts';
import { ReplayStorage } from '../src/runtime/shared/replay-storage.ts';
import { argmax } from '../src/training/evaluate.ts';
import { BUNDLED_HELD_OUT, evaluateParams, loadHeldOut } from '../src/training/held-out.ts';
import { createEngine } from '../src/training/train.ts';
import { WeightAverage } from '../src/training/weight-average.ts';
import { fmt, writeResult } from './lib.ts';

const STARTER = modelFile(STARTER_DIR, latestVersion(STARTER_DIR)!);
const UPDATES_PER_TRANSITION = 0.012;

interface Variant {
  readonly name: string;
  readonly learningRate: number;
  readonly hindsight: boolean;
  readonly rehearsal: boolean;
}

const VARIANTS: readonly Variant[] = [
  {
    name: 'as it was (1e-3, played transitions only)',
    learningRate: 1e-3,
    hindsight: false,
    rehearsal: false,
  },
  {
    name: 'defaults (resume rate, hindsight, rehearsal)',
    learningRate: Number.NaN,
    hindsight: true,
    rehearsal: true,
  },
];

interface Checkpoint {
  readonly updates: number;
  readonly last: number;
  readonly average: number;
  readonly averageCalls: number;
}

async function fineTune(
  v: Variant,
  config: WardenConfig,
  updates: number,
  every: number,
): Promise<Checkpoint[]> {
  const starter = readPolicyParams(readFileSync(STARTER));
  const lr = Number.isNaN(v.learningRate) ? config.learning.resumeLearningRate : v.learningRate;
  const cfg = { ...config, learning: { ...config.learning, learningRate: lr } };
  const traces = splitTraces(await loadTraces(BUNDLED_HELD_OUT), 'train');
  const heldOut = await loadHeldOut(cfg);
  const engine = await createEngine(starter, cfg, 'ort');
  const dim = cfg.telemetry.stateDim;
  const replay = new ReplayStorage(ReplayStorage.create({ capacity: 1_000_000, dim }).buffer, 1);
  const learner = new DqnLearner(engine, hyperParameters(cfg), sampleOptions(cfg), replay, {
    warn: () => undefined,
  });
  const rehearsal = v.rehearsal ? new Rehearsal(await loadRehearsal(cfg)) : undefined;
  const stage = { dim, horizon: cfg.telemetry.horizon, rewards: cfg.rewards };
  const env = {
    cleanSuccessRate: 0.9,
    benign: traces.filter((t) => t.episode.label === 'benign'),
    seed: 1,
  };
  const served = async (state: Float32Array) => {
    const q = forward(starter, state, 1);
    return { action: argmax(q), qValues: Array.from(q) };
  };
  const rand = seededRandom(1);
  const average = new WeightAverage();
  const out: Checkpoint[] = [];
  let online = 0;
  let owed = 0;
  for (let episode = 0; learner.updates < updates; episode++) {
    const trace = traces[Math.floor(rand() * traces.length)]!;
    const r = await runEpisode(trace, served, stage, env, episode);
    online += replay.append(r.stage1.transitions) + replay.append(r.stage2.transitions);
    if (v.hindsight)
      online += replay.append(
        hindsightVerdicts(
          r.stage1.transitions.map((x) => x.state),
          trace.episode.label,
          cfg.rewards,
          cfg.learning.hindsightStates,
          episode,
          1,
        ),
      );
    rehearsal?.topUp(replay, online, cfg.learning.rehearsalShare);
    learner.episodeFinished(r.reward);
    owed += (r.stage1.transitions.length + r.stage2.transitions.length) * UPDATES_PER_TRANSITION;
    for (; owed >= 1 && learner.updates < updates; owed--) {
      await learner.update();
      const u = learner.updates;
      if (u % 100 === 0) average.add(engine.getParams());
      if (u % every !== 0) continue;
      const last = await evaluateParams(engine.getParams(), heldOut, cfg);
      const mean = await evaluateParams(average.mean()!, heldOut, cfg);
      out.push({
        updates: u,
        last: last.balancedAccuracy,
        average: mean.balancedAccuracy,
        averageCalls: mean.meanEventsBeforeDecision,
      });
      console.log(
        `  ${String(u).padStart(6)} updates: last ${fmt(last.balancedAccuracy, 3)}, mean of ${average.count} snapshots ${fmt(mean.balancedAccuracy, 3)} (decides after ${fmt(mean.meanEventsBeforeDecision, 1)} calls)`,
      );
    }
  }
  engine.dispose();
  return out;
}

export async function run(args: string[]): Promise<void> {
  const updates = Number(args[0] ?? 3000);
  const every = Number(args[1] ?? 1000);
  const { config } = validateConfig({});
  const starter = readPolicyParams(readFileSync(STARTER));
  const base = await evaluateParams(starter, await loadHeldOut(config), config);
  console.log(
    `starter: held-out balanced accuracy ${fmt(base.balancedAccuracy, 3)} (${base.episodes} episodes), decides after ${fmt(base.meanEventsBeforeDecision, 1)} calls`,
  );
  const results: Record<string, Checkpoint[]> = {};
  for (const v of VARIANTS) {
    console.log(`${v.name}:`);
    results[v.name] = await fineTune(v, config, updates, every);
  }
  const final = (name: string) => results[name]!.at(-1)?.average ?? Number.NaN;
  writeResult(
    'finetune',
    {
      starterBalancedAccuracy: base.balancedAccuracy,
      asItWasBalancedAccuracy: final(VARIANTS[0]!.name),
      defaultsBalancedAccuracy: final(VARIANTS[1]!.name),
    },
    { updates, every, updatesPerTransition: UPDATES_PER_TRANSITION, results },
  );
}
