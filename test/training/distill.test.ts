// Distillation (src/training/distill.ts) and ensemble members on worker threads
// (src/training/members.ts): `warden train --members K` trains K networks and exports one network
// that learned their mean Q-values.

import test from 'ava';
import { StateAccumulator } from '../../src/actors/adapter/state-vector.ts';
import { forward, initParams, type QNetParams } from '../../src/actors/learner/q-network.ts';
import { readTraceFile } from '../../src/data/load-traces.ts';
import { InvalidInputError } from '../../src/runtime/errors.ts';
import { distill, distillationStates } from '../../src/training/distill.ts';
import { trainMembers } from '../../src/training/members.ts';
import { train } from '../../src/training/train.ts';
import { testConfig } from '../helpers.ts';

const DATA = new URL('../../data/oliveira-balanced/api_calls.csv', import.meta.url).pathname;
const config = testConfig({
  telemetry: { stateDim: 32 },
  learning: { hiddenUnits: [32, 32], epsilonStart: 0.5 },
});
const stage = { dim: 32, horizon: config.telemetry.horizon, rewards: config.rewards };
const traces = async (n: number) => (await readTraceFile(DATA)).traces.slice(0, n);

test('distillation states: every prefix of every trace as the stage-1 state the policy sees, and a variant of it', async (t) => {
  const some = await traces(5);
  const { states, n } = distillationStates(some, stage, 3);
  t.is(n, 2 * some.reduce((a, tr) => a + Math.min(tr.events.length, stage.horizon), 0));
  t.is(states.length, n * stage.dim);
  t.true(states.every((v) => v >= 0 && v <= 1));
  let row = 0;
  let variants = 0;
  for (const tr of some) {
    const acc = new StateAccumulator(stage.dim, stage.horizon);
    for (const e of tr.events.slice(0, stage.horizon)) {
      acc.add(e);
      const seen = acc.vector(1, 0, false);
      t.deepEqual(states.subarray(row * stage.dim, (row + 1) * stage.dim), seen);
      const variant = states.subarray((row + 1) * stage.dim, (row + 2) * stage.dim);
      if (variant.some((v, i) => v !== seen[i])) variants++;
      row += 2;
    }
  }
  t.true(
    variants > n / 4,
    `${variants} of ${n / 2} variants differ in stage, isolation or cleaning`,
  );
});

function meanSquared(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

test('distill: the student learns the mean of its teachers’ Q-values, closer to it than either teacher', async (t) => {
  const dims = [32, 32, 32, 6];
  const teachers: QNetParams[] = [initParams(dims, false, 1), initParams(dims, false, 2)];
  const some = await traces(20);
  const result = await distill({
    teachers,
    traces: some,
    config,
    stage,
    epochs: 8,
    decay: 0.7,
    seed: 9,
  });
  t.deepEqual(result.params.dims, dims);
  // Judged on states of other traces than those it learned from.
  const { states, n } = distillationStates(
    (await readTraceFile(DATA)).traces.slice(20, 30),
    stage,
    4,
  );
  const [a, b] = teachers.map((p) => forward(p, states, n)) as [Float32Array, Float32Array];
  const mean = a.map((v, i) => (v + b[i]!) / 2);
  const student = forward(result.params, states, n);
  const untrained = forward(initParams(dims, false, 9), states, n);
  const err = meanSquared(student, mean);
  t.log(
    `student ${err.toExponential(2)}, teachers ${meanSquared(a, mean).toExponential(2)}, untrained ${meanSquared(untrained, mean).toExponential(2)}`,
  );
  t.true(err < meanSquared(a, mean) / 4);
  t.true(err < meanSquared(b, mean) / 4);
  t.true(err < meanSquared(untrained, mean) / 10);
});

test('distill: traces without events are a clear error, not a network trained on nothing', async (t) => {
  const [one] = await traces(1);
  const empty = { ...one!, events: [] };
  const teachers = [initParams([32, 32, 32, 6], false, 1)];
  await t.throwsAsync(distill({ teachers, traces: [empty], config, stage }), {
    instanceOf: InvalidInputError,
    message: /at least one event/,
  });
});

test('trainMembers: each member is the run of train() with its own seed, on its own worker thread', async (t) => {
  const some = await traces(30);
  const options = { traces: some, config, episodes: 8, engine: 'ort' as const };
  const members = await trainMembers({ ...options, members: 2, seed: 7, parallel: 2 });
  t.is(members.length, 2);
  const [seven, eight] = await Promise.all([
    train({ ...options, seed: 7 }),
    train({ ...options, seed: 8 }),
  ]);
  t.deepEqual(members[0]!.params.tensors, seven.params.tensors);
  t.deepEqual(members[1]!.params.tensors, eight.params.tensors);
  t.notDeepEqual(members[0]!.params.tensors, members[1]!.params.tensors);
});

test('trainMembers: a member that fails fails the run with its number and reason', async (t) => {
  const err = await t.throwsAsync(
    trainMembers({ traces: [], config, episodes: 5, members: 2, seed: 1, parallel: 1 }),
  );
  t.regex(err!.message, /^training member 1 failed: /);
});
