// Online hindsight verdicts (src/actors/episodes/hindsight.ts): which states of a labelled stage
// get every verdict, and what each earns. The episodes actor's use of them is checked end to end
// in test/integration/sandbox-e2e.test.ts.

import test from 'ava';
import fc from 'fast-check';
import { hindsightVerdicts, spreadIndices } from '../../src/actors/episodes/hindsight.ts';
import { ACTIONS } from '../../src/messages/action.ts';
import { testConfig } from '../helpers.ts';

test('the states chosen: evenly spread, increasing, the decided (last) one always among them', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 40 }), (n, count) => {
      const got = spreadIndices(n, count);
      t.is(got.length, Math.min(n, count));
      t.true(got.every((x, i) => x >= 0 && x < n && (i === 0 || x > got[i - 1]!)));
      if (got.length > 0) t.is(got.at(-1), n - 1);
      if (got.length > 1) t.is(got[0], 0);
      // Even: no gap between two chosen states exceeds the ideal spacing by a whole step.
      if (got.length > 2) {
        const ideal = (n - 1) / (got.length - 1);
        t.true(got.every((x, i) => i === 0 || x - got[i - 1]! <= Math.ceil(ideal) + 1));
      }
    }),
    { numRuns: 300 },
  );
});

test('every verdict at each chosen state, with the reward it would have earned: terminal, one step', (t) => {
  const r = testConfig().rewards;
  const states = Array.from({ length: 30 }, (_, i) => Float32Array.of(i / 30, 1 - i / 30));
  const mal = hindsightVerdicts(states, 'malicious', r, 4, 77, 1);
  t.is(mal.length, 4 * 4);
  t.deepEqual(
    [...new Set(mal.map((e) => e.state[0]! * 30))].map(Math.round),
    [0, 10, 19, 29],
    'four states spread over the thirty',
  );
  const earned = (action: number) => mal.find((e) => e.action === action)!.reward;
  t.is(earned(ACTIONS.TERMINATE), r.perEvent + r.truePositive);
  t.is(earned(ACTIONS.QUARANTINE), r.perEvent + r.truePositive);
  t.is(earned(ACTIONS.RELEASE), r.perEvent + r.falseNegative);
  t.is(earned(ACTIONS.REQUEST_REVIEW), r.perEvent + r.review);
  t.true(mal.every((e) => e.done && e.nextState === e.state && e.episode === 77 && e.stage === 1));

  const ben = hindsightVerdicts(states, 'benign', r, 8, 1, 1);
  t.is(ben.find((e) => e.action === ACTIONS.TERMINATE)!.reward, r.perEvent + r.falsePositive);
  t.is(ben.find((e) => e.action === ACTIONS.RELEASE)!.reward, r.perEvent + r.trueNegative);
  t.false(
    ben.some((e) => e.action === ACTIONS.CONTINUE || e.action === ACTIONS.RAISE_ISOLATION),
    'only verdicts: what continuing earns depends on what comes next',
  );

  t.deepEqual(hindsightVerdicts(states, 'unknown', r, 8, 1, 1), [], 'no truth, no hindsight');
  t.deepEqual(hindsightVerdicts(states, 'malicious', r, 0, 1, 1), [], '0 turns it off');
  t.deepEqual(hindsightVerdicts([], 'malicious', r, 8, 1, 1), []);
});
