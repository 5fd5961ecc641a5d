// Property 17: the chosen action is the argmax of the Q-values — ties go to the first maximum,
// NaN never wins, and confidence is the softmax probability of the chosen action.

import test from 'ava';
import fc from 'fast-check';
import { argmaxQ, chooseAction, confidenceOf } from '../../src/actors/inference/decide.ts';

const qValue = fc.oneof(
  { weight: 8, arbitrary: fc.float({ noDefaultInfinity: false }) },
  { weight: 1, arbitrary: fc.constant(Number.NaN) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, -1) },
);

test('property 17: the chosen action is the first maximum of the non-NaN Q-values', (t) => {
  fc.assert(
    fc.property(fc.array(qValue, { minLength: 6, maxLength: 6 }), (q) => {
      const a = argmaxQ(q);
      const finite = q.map((v, i) => [v, i] as const).filter(([v]) => !Number.isNaN(v));
      if (finite.length === 0) return a === 0;
      const max = Math.max(...finite.map(([v]) => v));
      const first = finite.find(([v]) => v === max)![1];
      return a === first;
    }),
    { numRuns: 5_000 },
  );
  t.is(argmaxQ([1, 3, 3, 0, 0, 0]), 1, 'a tie goes to the first');
  t.is(argmaxQ([Number.NaN, 2, Number.NaN, 5, 0, 0]), 3);
  t.is(argmaxQ([0, 0, 0, 0, 0, 0], 0), 0);
  t.is(argmaxQ(Float32Array.of(9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6), 6), 5, 'reads at an offset');
});

test('confidence is the softmax probability of the chosen action, in [1/6, 1] for the argmax', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 6, maxLength: 6 }),
      (q) => {
        const c = confidenceOf(q, 0, argmaxQ(q));
        return c >= 1 / 6 - 1e-9 && c <= 1;
      },
    ),
  );
  t.true(Math.abs(confidenceOf([0, 0, 0, 0, 0, 0], 0, 2) - 1 / 6) < 1e-12);
  t.true(confidenceOf([0, 0, 20, 0, 0, 0], 0, 2) > 0.99);
  t.is(
    confidenceOf([Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN], 0, 0),
    1 / 6,
  );
});

test('a verdict margin: a stage-ending action only when it leads observing on by the margin', (t) => {
  fc.assert(
    fc.property(
      fc.array(qValue, { minLength: 6, maxLength: 6 }),
      fc.float({ min: 0, max: 10, noNaN: true }),
      (q, margin) => {
        const greedy = argmaxQ(q);
        const a = chooseAction(q, 0, margin);
        if (margin === 0 || greedy <= 1) return a === greedy;
        const observe = argmaxQ(q, 0, 2);
        const lead = q[greedy]! - q[observe]!;
        if (Number.isNaN(q[observe]!)) return a === greedy;
        return lead >= margin ? a === greedy : a === observe;
      },
    ),
    { numRuns: 5_000 },
  );
  const q = [0.1, 0.3, 0.5, 0.2, 0, 0];
  t.is(chooseAction(q, 0, 0), 2, 'margin 0: the argmax');
  t.is(chooseAction(q, 0, 0.2), 2, 'terminate leads raise-isolation by 0.2');
  t.is(chooseAction(q, 0, 0.25), 1, 'short of the margin: the better observing action');
  t.is(chooseAction([0.4, 0, 0, 0, 0, 0.5], 0, 0.25), 0, 'release is held back too');
  t.is(
    chooseAction([Number.NaN, Number.NaN, 1, 0, 0, 0], 0, 5),
    2,
    'NaN observing values hold nothing back',
  );
  t.is(
    chooseAction(Float32Array.of(9, 9, 9, 9, 9, 9, 0, 0, 1, 0, 0, 0), 6, 0.5),
    2,
    'reads at an offset',
  );
});
