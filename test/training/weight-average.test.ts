// Weight averaging (src/training/weight-average.ts and train's averageFrom): the model a training
// run returns is the mean of the weights it passed through, taken where the options say.

import test from 'ava';
import fc from 'fast-check';
import type { QNetParams } from '../../src/actors/learner/q-network.ts';
import { LayoutError } from '../../src/runtime/errors.ts';
import { train } from '../../src/training/train.ts';
import { WeightAverage } from '../../src/training/weight-average.ts';
import { recordedTrace, testConfig } from '../helpers.ts';

const params = (values: number[][], dims = [2, 1]): QNetParams => ({
  dims,
  dueling: false,
  tensors: values.map((v) => Float32Array.from(v)),
});

test('the mean of the snapshots, element by element', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 3, maxLength: 3 }),
        {
          minLength: 1,
          maxLength: 20,
        },
      ),
      (snapshots) => {
        const avg = new WeightAverage();
        for (const s of snapshots) avg.add(params([s.slice(0, 2), s.slice(2)]));
        const mean = avg.mean()!;
        t.is(avg.count, snapshots.length);
        t.deepEqual(mean.dims, [2, 1]);
        for (let j = 0; j < 3; j++) {
          const expected = snapshots.reduce((a, s) => a + s[j]!, 0) / snapshots.length;
          const got = j < 2 ? mean.tensors[0]![j]! : mean.tensors[1]![0]!;
          t.true(
            Math.abs(got - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
            `${got} vs ${expected}`,
          );
        }
      },
    ),
  );
});

test('no snapshot, no mean; a snapshot of another shape is refused', (t) => {
  const avg = new WeightAverage();
  t.is(avg.mean(), undefined);
  avg.add(params([[1, 2], [3]]));
  t.throws(() => avg.add(params([[1, 2, 3], [4]])), { instanceOf: LayoutError });
  t.throws(() => avg.add(params([[1, 2], [3]], [1, 2])), { instanceOf: LayoutError });
  t.is(avg.count, 1, 'the refused snapshot is not counted');
});

test('train: averaging from episode 10 every 10 gives the mean of the weights after 10, 20 and 30 episodes', async (t) => {
  const config = testConfig({
    telemetry: { stateDim: 32 },
    learning: { hiddenUnits: [16, 16], epsilonStart: 0.5 },
  });
  const traces = [
    recordedTrace('m', 'malicious', [
      'WriteProcessMemory',
      'CreateRemoteThread',
      'connect',
      'send',
    ]),
    recordedTrace('g', 'benign', ['GetTickCount', 'NtClose', 'GetSystemTime', 'NtClose']),
  ];
  const run = (episodes: number, averageFrom?: number) =>
    train({ traces, config, episodes, seed: 5, ...(averageFrom ? { averageFrom } : {}) });
  // A run is reproducible from its seed, and its first k episodes do not depend on how many follow.
  const [at10, at20, at30, averaged] = await Promise.all([run(10), run(20), run(30), run(30, 10)]);
  t.is(at30.averaged, undefined, 'without averageFrom the result is the last weights');
  t.deepEqual(averaged.averaged, { from: 10, to: 30, snapshots: 3 });
  let differs = false;
  for (const [i, tensor] of averaged.params.tensors.entries()) {
    for (let j = 0; j < tensor.length; j++) {
      const expected =
        (at10.params.tensors[i]![j]! + at20.params.tensors[i]![j]! + at30.params.tensors[i]![j]!) /
        3;
      if (Math.abs(tensor[j]! - expected) > 1e-6)
        return t.fail(`tensor ${i}[${j}]: ${tensor[j]} vs ${expected}`);
      if (tensor[j] !== at30.params.tensors[i]![j]) differs = true;
    }
  }
  t.true(differs, 'the average is not the last weights');
});

test('a window of k: the mean of the last k snapshots; clear forgets them all', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 10 }),
      (values, k) => {
        const avg = new WeightAverage(k);
        for (const v of values) avg.add(params([[v, -v], [2 * v]]));
        const last = values.slice(-k);
        const expected = last.reduce((a, v) => a + v, 0) / last.length;
        const mean = avg.mean()!;
        t.is(avg.count, last.length);
        const close = (got: number, want: number) =>
          Math.abs(got - want) <= 1e-4 * Math.max(1, Math.abs(want));
        t.true(close(mean.tensors[0]![0]!, expected), `${mean.tensors[0]![0]} vs ${expected}`);
        t.true(close(mean.tensors[0]![1]!, -expected));
        t.true(close(mean.tensors[1]![0]!, 2 * expected));
        avg.clear();
        t.is(avg.mean(), undefined);
        t.is(avg.count, 0);
      },
    ),
  );
  t.throws(() => new WeightAverage(0), { instanceOf: RangeError });
});
