import { readFileSync } from 'node:fs';
import { forward } from '/work/main/src/actors/learner/q-network.ts';
import { importCsv } from '/work/main/src/data/import-csv.ts';
import { splitTraces } from '/work/main/src/data/split.ts';
import { argmax, evaluatePolicy } from '/work/main/src/training/evaluate.ts';
import { train } from '/work/main/src/training/train.ts';
import { testConfig } from '/work/main/test/helpers.ts';

const names = JSON.parse(readFileSync('/work/main/data/oliveira-balanced/api_names.json', 'utf8'));
const { traces } = importCsv('/work/main/data/oliveira-balanced/api_calls.csv', { names });
const tr = splitTraces(traces, 'train'),
  te = splitTraces(traces, 'test');
const E = process.env;
const config = testConfig({
  learning: { epsilonDecay: Number(E.DECAY ?? 0.999), tau: Number(E.TAU ?? 0.005), gamma: 0.99 },
  rewards: { perEvent: Number(E.PER ?? -0.001) },
  replay: { nStep: Number(E.NSTEP ?? 10) },
});
const cfg = { dim: 64, horizon: 100, rewards: config.rewards };
const r = await train({
  traces: tr,
  config,
  episodes: Number(E.EP ?? 6000),
  updatesPerStep: Number(E.UPS ?? 0.5),
  exploreContinue: 0.97,
  progressEvery: 1000,
  onProgress: (p) =>
    console.log(
      JSON.stringify({
        ep: p.episode,
        eps: +p.epsilon.toFixed(3),
        r: +p.averageReward.toFixed(3),
        tpr: p.tpr,
        fpr: p.fpr,
      }),
    ),
});
console.log(
  'seconds',
  r.seconds.toFixed(1),
  'updates',
  r.metrics.updates,
  'transitions',
  r.transitions,
);
const pol = (s: Float32Array) => {
  const q = forward(r.params, s, 1);
  return { action: argmax(q), qValues: q };
};
const ev = await evaluatePolicy(te, pol, cfg);
console.log(
  'agent AUC',
  ev.auc.toFixed(3),
  'bal',
  ev.balancedAccuracy.toFixed(3),
  'events',
  ev.meanEventsBeforeDecision.toFixed(1),
  JSON.stringify(ev.actions),
);
