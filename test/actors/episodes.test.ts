// Rewards (properties 9, 10) and the two-stage episode on recorded telemetry.

import test from 'ava';
import fc from 'fast-check';
import { learnedPattern } from '../../src/actors/episodes/patterns.ts';
import {
  type Feedback,
  feedbackReward,
  stepCost,
  verdictOf,
  verdictReward,
} from '../../src/actors/episodes/rewards.ts';
import { runEpisode, runStage } from '../../src/actors/episodes/two-stage.ts';
import { ACTIONS, type ActionId } from '../../src/messages/action.ts';
import { recordedTrace, testConfig } from '../helpers.ts';

const rewardTables = fc.record({
  truePositive: fc.double({ min: 0.01, max: 100, noNaN: true }),
  trueNegative: fc.double({ min: 0.01, max: 100, noNaN: true }),
  falsePositive: fc.double({ min: -100, max: -0.01, noNaN: true }),
  falseNegative: fc.double({ min: -100, max: -0.01, noNaN: true }),
  perEvent: fc.double({ min: -1, max: 0, noNaN: true }),
  isolation: fc.double({ min: -1, max: 0, noNaN: true }),
  review: fc.double({ min: -10, max: 0, noNaN: true }),
  unapplied: fc.double({ min: -10, max: -0.001, noNaN: true }),
});

test('property 22: every feedback yields a reward — nothing for an applied action, a cost for one not applied or failed', (t) => {
  fc.assert(
    fc.property(
      rewardTables,
      fc.constantFrom<ActionId>(...(Object.values(ACTIONS) as ActionId[])),
      fc.constantFrom<Feedback>('applied', 'not-applied', 'failed'),
      (r, action, feedback) => {
        const v = feedbackReward(action, feedback, r);
        if (!Number.isFinite(v)) return false;
        if (action === ACTIONS.CONTINUE || feedback === 'applied') return v === 0;
        return v === r.unapplied && v < 0;
      },
    ),
  );
  t.pass();
});

test('property 9: a successful detection (malicious verdict on malware, release of goodware) earns a positive reward', (t) => {
  fc.assert(
    fc.property(
      rewardTables,
      fc.constantFrom<ActionId>(ACTIONS.TERMINATE, ACTIONS.QUARANTINE),
      (r, action) => {
        return (
          verdictReward(verdictOf(action)!, 'malicious', r) > 0 &&
          verdictReward('benign', 'benign', r) > 0
        );
      },
    ),
  );
  t.pass();
});

test('property 10: a false positive or a false negative earns a negative reward', (t) => {
  fc.assert(
    fc.property(
      rewardTables,
      fc.constantFrom<ActionId>(ACTIONS.TERMINATE, ACTIONS.QUARANTINE),
      (r, action) => {
        return (
          verdictReward(verdictOf(action)!, 'benign', r) < 0 &&
          verdictReward(verdictOf(ACTIONS.RELEASE)!, 'malicious', r) < 0
        );
      },
    ),
  );
  const defaults = testConfig().rewards;
  t.true(defaults.falseNegative < defaults.falsePositive, 'FN costs more than FP by default');
  t.true(verdictReward('review', 'malicious', defaults) < 0, 'review costs and earns nothing else');
  t.is(stepCost(ACTIONS.RAISE_ISOLATION, defaults), defaults.perEvent + defaults.isolation);
});

const trace = recordedTrace;
const cfg = { dim: 32, horizon: 100, rewards: testConfig().rewards };
const after = (n: number, action: ActionId) => {
  let seen = 0;
  return () => ({ action: ++seen >= n ? action : ACTIONS.CONTINUE, qValues: [0, 0, 0, 0, 0, 0] });
};

test('a stage: one transition per observed event, chained states, the verdict reward on the terminal one', async (t) => {
  const mal = trace('m', 'malicious', [
    'NtOpenFile',
    'WriteProcessMemory',
    'CreateRemoteThread',
    'NtClose',
  ]);
  const r = await runStage(mal.events, 1, 'malicious', false, after(3, ACTIONS.TERMINATE), cfg, 7);
  t.is(r.transitions.length, 3);
  t.is(r.eventsObserved, 3);
  t.true(r.decided);
  t.is(r.verdict, 'malicious');
  t.deepEqual(
    r.transitions.map((x) => x.done),
    [false, false, true],
  );
  t.deepEqual(
    r.transitions[0]!.nextState,
    r.transitions[1]!.state,
    'next state is the state after the next event',
  );
  t.is(r.transitions[2]!.reward, cfg.rewards.perEvent + cfg.rewards.truePositive);
  t.true(r.transitions.every((x) => x.episode === 7 && x.stage === 1));

  const released = await runStage(
    mal.events,
    1,
    'malicious',
    false,
    () => ({ action: ACTIONS.CONTINUE, qValues: [0, 0, 0, 0, 0, 0] }),
    cfg,
    1,
  );
  t.false(released.decided);
  t.is(released.verdict, 'benign', 'reaching the end releases the file');
  t.is(released.transitions.at(-1)!.reward, cfg.rewards.perEvent + cfg.rewards.falseNegative);
});

test('two-stage episode: both stages produce transitions; a cleaned file replays as goodware in stage 2', async (t) => {
  const mal = trace('m', 'malicious', ['WriteProcessMemory', 'CreateRemoteThread', 'connect']);
  const good = trace('g', 'benign', ['GetTickCount', 'NtClose']);
  const env = { cleanSuccessRate: 1, benign: [good], seed: 1 };
  const r = await runEpisode(mal, after(1, ACTIONS.QUARANTINE), cfg, env, 3);
  t.is(r.stage1.transitions.length, 1);
  t.is(r.stage2.truth, 'benign', 'cleaned successfully');
  t.true(r.stage2.transitions.length > 0);
  t.true(
    r.stage2.transitions.every((x) => x.stage === 2 && x.state[27] === 1),
    'stage-2 states carry stage and cleaned flags',
  );
  const failedCleaning = await runEpisode(
    mal,
    after(1, ACTIONS.QUARANTINE),
    cfg,
    { ...env, cleanSuccessRate: 0 },
    4,
  );
  t.is(failedCleaning.stage2.truth, 'malicious');
  t.is(failedCleaning.reward, failedCleaning.stage1.reward + failedCleaning.stage2.reward);
});

test('a learned pattern: the family when reported, else the documented behaviour class; a stable id', (t) => {
  const base = {
    episodeId: 'e1',
    stage: 1 as const,
    action: 3 as const,
    reward: 1,
    confidence: 1.4,
    modelVersion: 'v1',
    timestamp: 5,
  };
  const state = (set: Record<number, number>) => {
    const s = new Float32Array(64);
    for (const [i, v] of Object.entries(set)) s[Number(i)] = v;
    return s;
  };
  t.is(
    learnedPattern({ ...base, state: state({ 12: 0.3 }), family: null }).attackType,
    'injection',
  );
  t.is(
    learnedPattern({ ...base, state: state({ 10: 0.3 }), family: null }).attackType,
    'persistence',
  );
  t.is(
    learnedPattern({ ...base, state: state({ 18: 0.6, 2: 0.1 }), family: null }).attackType,
    'ransomware',
  );
  t.is(learnedPattern({ ...base, state: state({ 4: 0.2 }), family: null }).attackType, 'network');
  t.is(learnedPattern({ ...base, state: state({}), family: null }).attackType, 'unknown');
  t.is(
    learnedPattern({ ...base, state: state({ 12: 0.3 }), family: ' Emotet ' }).attackType,
    'Emotet',
  );
  const a = learnedPattern({ ...base, state: state({}), family: null });
  t.is(
    a.patternId,
    learnedPattern({ ...base, state: state({}), family: null, timestamp: 9 }).patternId,
    'same episode/stage/model and state (an outcome sent again) → same id',
  );
  t.not(
    a.patternId,
    learnedPattern({ ...base, state: state({ 1: 1 }), family: null }).patternId,
    'another run under the same episode id (a sandbox reusing its ids) → another pattern',
  );
  t.is(a.confidence, 1, 'clamped to [0, 1]');
  t.is(a.features.length, 64);
});
