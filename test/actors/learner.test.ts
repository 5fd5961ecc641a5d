// The learner: engines agree with the TensorFlow.js reference; updates start at 64 samples
// (property 7); the target syncs exactly every 1000 updates (property 8); NaN/explosion recovery;
// training metrics every step (property 34); incremental learning from saved weights (29).

import test from 'ava';
import fc from 'fast-check';
import { DqnLearner } from '../../src/actors/learner/dqn.ts';
import { ADAM, type EngineOptions } from '../../src/actors/learner/engine.ts';
import { hyperParameters, sampleOptions } from '../../src/actors/learner/hyper-parameters.ts';
import { OrtEngine } from '../../src/actors/learner/ort-engine.ts';
import {
  forward,
  initParams,
  type QNetParams,
  seededRandom,
} from '../../src/actors/learner/q-network.ts';
import { TfjsEngine } from '../../src/actors/learner/tfjs-engine.ts';
import type { Experience } from '../../src/messages/experience.ts';
import {
  createSampleBatch,
  ReplayStorage,
  type SampleBatch,
} from '../../src/runtime/shared/replay-storage.ts';
import { forgetting } from '../../src/training/held-out.ts';
import { testConfig } from '../helpers.ts';

const DIMS = [32, 48, 48, 6];
const quiet = { warn: () => undefined };

function randomBatch(n: number, dim: number, seed: number): SampleBatch {
  const r = seededRandom(seed);
  const b = createSampleBatch(n, dim);
  b.size = n;
  for (let i = 0; i < n * dim; i++) {
    b.states[i] = r();
    b.nextStates[i] = r();
  }
  for (let i = 0; i < n; i++) {
    b.actions[i] = Math.floor(r() * 6);
    b.returns[i] = r() * 4 - 2;
    b.discounts[i] = 0.97;
    b.dones[i] = r() < 0.2 ? 1 : 0;
    b.weights[i] = 0.5 + r() / 2;
  }
  return b;
}

const maxDiff = (a: QNetParams, b: QNetParams) =>
  Math.max(
    ...a.tensors.map((t, i) => Math.max(...t.map((v, k) => Math.abs(v - b.tensors[i]![k]!)))),
  );

for (const [loss, doubleDqn, gradClip] of [
  ['huber', true, 1],
  ['mse', false, 1],
  ['huber', true, 0],
] as const) {
  test(`ONNX Runtime training step equals the TensorFlow.js reference (${loss}, double=${doubleDqn}, clip ${gradClip || 'off'})`, async (t) => {
    const params = initParams(DIMS, false, 3);
    const opts: EngineOptions = { learningRate: 1e-3, loss, doubleDqn, gradClip, adam: ADAM };
    const ort = await OrtEngine.create(params, opts);
    const ref = await TfjsEngine.create(params, opts);
    try {
      for (let step = 0; step < 20; step++) {
        const batch = randomBatch(16, DIMS[0]!, step + 1);
        const a = await ort.step(batch);
        const b = await ref.step(batch);
        t.true(
          Math.abs(a.loss - b.loss) <= 1e-4 * Math.max(1, Math.abs(b.loss)),
          `step ${step}: loss ${a.loss} vs ${b.loss}`,
        );
        t.true(a.tdErrors.every((v, i) => Math.abs(v - b.tdErrors[i]!) < 1e-4));
        if (step === 9) {
          ort.syncTarget(1);
          ref.syncTarget(1);
        }
      }
      const diff = maxDiff(ort.getParams(), ref.getParams());
      t.true(diff < 1e-4, `weights differ by ${diff} after 20 steps`);
      const states = randomBatch(4, DIMS[0]!, 99).states;
      const q = await ort.predict(states, 4);
      const want = forward(ort.getParams(), states, 4);
      t.true(
        q.every((v, i) => Math.abs(v - want[i]!) < 1e-4),
        'predict agrees with the plain forward pass',
      );
    } finally {
      ort.dispose();
      ref.dispose();
    }
  });
}

test('dueling heads train on the reference engine and keep Q = V + A − mean(A)', async (t) => {
  const params = initParams(DIMS, true, 5);
  const engine = await TfjsEngine.create(params, {
    learningRate: 1e-3,
    loss: 'huber',
    doubleDqn: true,
    gradClip: 10,
    adam: ADAM,
  });
  const batch = randomBatch(16, DIMS[0]!, 1);
  await engine.step(batch);
  const q = await engine.predict(batch.states, 3);
  const want = forward(engine.getParams(), batch.states, 3);
  t.true(q.every((v, i) => Math.abs(v - want[i]!) < 1e-4));
  engine.dispose();
});

function filledReplay(n: number, dim: number): ReplayStorage {
  const replay = ReplayStorage.create({ capacity: 10_000, dim });
  const e: Experience[] = Array.from({ length: n }, (_, i) => ({
    state: new Float32Array(dim).fill((i % 7) / 7),
    nextState: new Float32Array(dim).fill(((i + 1) % 7) / 7),
    action: (i % 6) as Experience['action'],
    reward: i % 3 === 0 ? 1 : -0.01,
    done: i % 10 === 9,
    episode: Math.floor(i / 10),
    stage: 1,
  }));
  replay.append(e);
  return replay;
}

test('property 7: no update while the replay holds fewer than 64 samples; one per call from 64 on', async (t) => {
  const config = testConfig({
    telemetry: { stateDim: 32 },
    learning: { hiddenUnits: [16, 16], batchSize: 32 },
  });
  for (const held of [0, 1, 63, 64, 200]) {
    const engine = await OrtEngine.create(initParams([32, 16, 16, 6], false, 1), {
      learningRate: 1e-3,
      loss: 'huber',
      doubleDqn: true,
      gradClip: 10,
      adam: ADAM,
    });
    const learner = new DqnLearner(
      engine,
      hyperParameters(config),
      sampleOptions(config),
      filledReplay(held, 32),
      quiet,
    );
    const outcome = await learner.update();
    t.is(outcome.kind, held >= 64 ? 'updated' : 'waiting', `${held} held`);
    t.is(learner.updates, held >= 64 ? 1 : 0);
    engine.dispose();
  }
});

test('property 8: the target network is synced exactly every targetSyncEvery updates, and only then', async (t) => {
  const config = testConfig({
    telemetry: { stateDim: 32 },
    learning: { hiddenUnits: [8], batchSize: 8, targetSyncEvery: 1000 },
    replay: { prioritized: false },
  });
  const engine = await OrtEngine.create(initParams([32, 8, 6], false, 1), {
    learningRate: 1e-3,
    loss: 'huber',
    doubleDqn: true,
    gradClip: 10,
    adam: ADAM,
  });
  let syncs = 0;
  const real = engine.syncTarget.bind(engine);
  engine.syncTarget = (tau: number) => {
    syncs++;
    real(tau);
  };
  const learner = new DqnLearner(
    engine,
    hyperParameters(config),
    sampleOptions(config),
    filledReplay(100, 32),
    quiet,
  );
  const syncedAt: number[] = [];
  for (let i = 1; i <= 2_500; i++) {
    const o = await learner.update();
    if (o.kind === 'updated' && o.targetSynced) syncedAt.push(i);
  }
  t.deepEqual(syncedAt, [1_000, 2_000]);
  t.is(syncs, 2);
  t.is(learner.metrics().targetSyncs, 2);
  engine.dispose();
});

test('property 8 (any period): syncs happen at exact multiples of the configured period', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 120 }),
      async (period, updates) => {
        const config = testConfig({
          telemetry: { stateDim: 32 },
          learning: { hiddenUnits: [4], batchSize: 4, targetSyncEvery: period },
          replay: { prioritized: false },
        });
        const engine = await OrtEngine.create(initParams([32, 4, 6], false, 1), {
          learningRate: 1e-3,
          loss: 'mse',
          doubleDqn: false,
          gradClip: 0,
          adam: ADAM,
        });
        const learner = new DqnLearner(
          engine,
          hyperParameters(config),
          sampleOptions(config),
          filledReplay(64, 32),
          quiet,
        );
        const at: number[] = [];
        for (let i = 1; i <= updates; i++)
          if (
            (await learner.update()).kind === 'updated' &&
            learner.metrics().targetSyncs > at.length
          )
            at.push(i);
        engine.dispose();
        return at.length === Math.floor(updates / period) && at.every((u) => u % period === 0);
      },
    ),
    { numRuns: 15 },
  );
  t.pass();
});

test('a NaN loss restores the last good weights, halves the learning rate and is reported', async (t) => {
  const config = testConfig({
    telemetry: { stateDim: 32 },
    learning: { hiddenUnits: [8], batchSize: 8, learningRate: 0.01 },
    replay: { prioritized: false },
  });
  const engine = await OrtEngine.create(initParams([32, 8, 6], false, 1), {
    learningRate: 0.01,
    loss: 'huber',
    doubleDqn: true,
    gradClip: 10,
    adam: ADAM,
  });
  const warnings: string[] = [];
  const learner = new DqnLearner(
    engine,
    hyperParameters(config),
    sampleOptions(config),
    filledReplay(100, 32),
    { warn: (_f, m) => warnings.push(m) },
  );
  for (let i = 0; i < 5; i++) await learner.update();
  const before = engine.getParams();
  const realStep = engine.step.bind(engine);
  engine.step = async (b) => {
    await realStep(b);
    engine.setParams({ ...before, tensors: before.tensors.map((x) => x.map(() => Number.NaN)) });
    return { loss: Number.NaN, tdErrors: new Float32Array(b.size) };
  };
  const outcome = await learner.update();
  t.is(outcome.kind, 'recovered');
  t.is(learner.metrics().learningRate, 0.005);
  t.is(learner.metrics().recoveries, 1);
  t.true(
    engine.getParams().tensors.every((x) => x.every(Number.isFinite)),
    'weights are finite again',
  );
  t.regex(warnings[0]!, /restored the last good weights/);
});

test('property 34: loss, epsilon, average reward and update rate are exposed after every step', async (t) => {
  const config = testConfig({
    telemetry: { stateDim: 32 },
    learning: { hiddenUnits: [8], batchSize: 8, epsilonDecay: 0.5 },
  });
  const engine = await OrtEngine.create(initParams([32, 8, 6], false, 1), {
    learningRate: 1e-3,
    loss: 'huber',
    doubleDqn: true,
    gradClip: 10,
    adam: ADAM,
  });
  const learner = new DqnLearner(
    engine,
    hyperParameters(config),
    sampleOptions(config),
    filledReplay(100, 32),
    quiet,
  );
  learner.episodeFinished(1);
  learner.episodeFinished(-1);
  learner.episodeFinished(0.5);
  for (let i = 1; i <= 5; i++) {
    await learner.update();
    const m = learner.metrics();
    t.is(m.updates, i);
    t.true(Number.isFinite(m.loss) && m.loss >= 0);
    t.true(Number.isFinite(m.updatesPerSecond));
  }
  const m = learner.metrics();
  t.is(m.epsilon, 0.125, 'epsilon decayed per finished episode: 1 · 0.5³');
  t.is(m.averageReward, 0.5 / 3);
  engine.dispose();
});

test('requirement 7.5: a version that does worse on the held-out set than the one before raises the degradation alert', (t) => {
  const result = (version: string, accuracy: number, reward = 1) => ({
    version,
    accuracy,
    auc: accuracy,
    reward,
    episodes: 200,
  });
  t.is(
    forgetting(undefined, result('v1', 0.8), 0.1),
    undefined,
    'the first version has nothing to compare',
  );
  t.is(
    forgetting(result('v1', 0.8), result('v2', 0.75), 0.1),
    undefined,
    'within the allowed drop',
  );
  t.like(forgetting(result('v2', 0.75), result('v3', 0.6, 0.5), 0.1), {
    type: 'model-degraded',
    source: 'held-out',
    version: 'v3',
    previousVersion: 'v2',
    accuracy: 0.6,
    previousAccuracy: 0.75,
    averageReward: 0.5,
  });
});
