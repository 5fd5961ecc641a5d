// Hindsight transitions (src/training/train.ts): a labelled trace becomes the whole stage-1 chain
// of CONTINUE steps and, at every step, each verdict with the reward it would have earned.

import test from 'ava';
import fc from 'fast-check';
import { StateAccumulator } from '../../src/actors/adapter/state-vector.ts';
import { stepCost, verdictOf, verdictReward } from '../../src/actors/episodes/rewards.ts';
import { ACTIONS } from '../../src/messages/action.ts';
import { hindsightTransitions } from '../../src/training/train.ts';
import { recordedTrace, testConfig } from '../helpers.ts';

const CALLS = [
  'NtClose',
  'connect',
  'WriteProcessMemory',
  'RegOpenKeyExW',
  'send',
  'NtDelayExecution',
];

test('every step of the run: a CONTINUE chain to its end, and each verdict with its earned reward', (t) => {
  const config = testConfig();
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(...CALLS), { minLength: 1, maxLength: 40 }),
      fc.constantFrom('malicious' as const, 'benign' as const),
      fc.integer({ min: 1, max: 30 }),
      (calls, label, horizon) => {
        const cfg = { dim: 64, horizon, rewards: config.rewards };
        const trace = recordedTrace('h', label, calls);
        const [chain, ...verdicts] = hindsightTransitions(trace, cfg, 1_000);
        const steps = Math.min(calls.length, horizon);
        // The states the adapter would have built, step by step.
        const acc = new StateAccumulator(64, horizon);
        const states = calls.slice(0, steps).map((_, i) => {
          acc.add(trace.events[i]!);
          return acc.vector(1, 0, false);
        });
        const r = config.rewards;
        t.is(chain!.length, steps);
        chain!.forEach((e, i) => {
          t.is(e.action, ACTIONS.CONTINUE);
          t.is(e.episode, 1_000, 'one episode: n-step returns follow it');
          t.deepEqual(Array.from(e.state), Array.from(states[i]!));
          t.deepEqual(Array.from(e.nextState), Array.from(states[Math.min(i + 1, steps - 1)]!));
          t.is(e.done, i === steps - 1);
          const end = i === steps - 1 ? verdictReward('benign', label, r) : 0;
          t.is(e.reward, stepCost(ACTIONS.CONTINUE, r) + end, 'a run that ends releases the file');
        });
        t.is(verdicts.length, steps * 4);
        const ids = new Set(verdicts.map(([e]) => e!.episode));
        t.is(ids.size, verdicts.length, 'each verdict is an episode of its own');
        t.false(ids.has(1_000));
        for (const [i, [e]] of verdicts.entries()) {
          t.true(e!.done);
          t.deepEqual(Array.from(e!.state), Array.from(states[Math.floor(i / 4)]!));
          t.is(e!.reward, stepCost(e!.action, r) + verdictReward(verdictOf(e!.action)!, label, r));
        }
        t.deepEqual(
          [...new Set(verdicts.map(([e]) => e!.action))].sort(),
          [ACTIONS.TERMINATE, ACTIONS.QUARANTINE, ACTIONS.REQUEST_REVIEW, ACTIONS.RELEASE].sort(),
        );
      },
    ),
    { numRuns: 40 },
  );
});
