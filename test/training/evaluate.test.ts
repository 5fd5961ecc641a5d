// The evaluation report (src/training/evaluate.ts): its mean reward is what the policy earns per
// episode under the configured rewards, the figure the learner's degradation alert compares.

import { readFileSync } from 'node:fs';
import test from 'ava';
import { forward } from '../../src/actors/learner/q-network.ts';
import { ACTIONS } from '../../src/messages/action.ts';
import type { RecordedTrace } from '../../src/messages/recorded.ts';
import { readPolicyParams } from '../../src/models/read-params.ts';
import { argmax, evaluatePolicy } from '../../src/training/evaluate.ts';
import { evaluateParams, loadHeldOut } from '../../src/training/held-out.ts';
import { recordedTrace, testConfig } from '../helpers.ts';

const unlabelled = (t: RecordedTrace): RecordedTrace => ({
  ...t,
  episode: { ...t.episode, label: 'unknown' },
});

test('mean reward: per episode, a step cost per observed call and the verdict reward of the truth', async (t) => {
  const r = testConfig().rewards;
  const cfg = { dim: 32, horizon: 100, rewards: r };
  const traces = [
    recordedTrace('m1', 'malicious', ['NtOpenFile', 'connect', 'send']),
    recordedTrace('m2', 'malicious', ['WriteProcessMemory']),
    recordedTrace('b1', 'benign', ['GetTickCount', 'NtClose']),
    unlabelled(recordedTrace('u', 'benign', ['NtClose'])),
  ];
  // Terminates at the second call (or the only one): TP, TP, FP; the unlabelled trace is left out.
  let calls = 0;
  const report = await evaluatePolicy(
    traces,
    () => {
      calls++;
      return { action: ACTIONS.TERMINATE, qValues: [0, 0, 1, 0, 0, 0] };
    },
    cfg,
  );
  t.is(report.episodes, 3);
  t.is(calls, 3, 'one decision each: the first is a verdict');
  const expected = (3 * r.perEvent + 2 * r.truePositive + r.falsePositive) / 3;
  t.true(Math.abs(report.meanReward - expected) < 1e-9, `${report.meanReward} vs ${expected}`);
  const released = await evaluatePolicy(
    traces,
    () => ({ action: ACTIONS.CONTINUE, qValues: [1, 0, 0, 0, 0, 0] }),
    cfg,
  );
  // Every call observed, then released at the end of the run: FN, FN, TN.
  const end = (6 * r.perEvent + 2 * r.falseNegative + r.trueNegative) / 3;
  t.true(Math.abs(released.meanReward - end) < 1e-9, `${released.meanReward} vs ${end}`);
});

test('AUC ranks every episode by the margin it had when the policy gave its verdict, not by an earlier doubt it revised', async (t) => {
  const cfg = { dim: 32, horizon: 100, rewards: testConfig().rewards };
  const traces = [
    recordedTrace('m', 'malicious', ['NtOpenFile', 'connect', 'send']),
    recordedTrace('b', 'benign', ['GetTickCount', 'NtClose', 'NtClose']),
    recordedTrace('u', 'benign', ['NtClose', 'NtClose']),
  ];
  // margin = max(Q[TERMINATE], Q[QUARANTINE]) − Q[RELEASE]
  const q = (margin: number) => [0, 0, margin, 0, 0, 0];
  const script = [
    // m: unsure at first, terminated at the second call with margin 2.
    { action: ACTIONS.CONTINUE, qValues: q(1) },
    { action: ACTIONS.TERMINATE, qValues: q(2) },
    // b: a strong doubt at the first call (5), revised: released at the second with margin −1.
    { action: ACTIONS.CONTINUE, qValues: q(5) },
    { action: ACTIONS.RELEASE, qValues: q(-1) },
    // u: never decides; its last observed margin is 3, above m's verdict.
    { action: ACTIONS.CONTINUE, qValues: q(0) },
    { action: ACTIONS.CONTINUE, qValues: q(3) },
  ];
  let step = 0;
  const report = await evaluatePolicy(traces, () => script[step++]!, cfg);
  t.is(step, script.length);
  // Ranked m (2) above b (−1) but below u (3): one of the two benign-malicious pairs in order.
  t.is(report.auc, 0.5);
  t.deepEqual(report.confusion, { tp: 1, fp: 0, tn: 2, fn: 0 });
});

test('the held-out evaluation through ONNX Runtime, every episode in step, reports what the plain forward pass one state at a time does', async (t) => {
  const config = testConfig();
  const starter = readPolicyParams(
    readFileSync(
      new URL('../../data/starter-model/drl_agent_v1795714602354.onnx', import.meta.url),
    ),
  );
  const heldOut = await loadHeldOut(config);
  const batched = await evaluateParams(starter, heldOut, config);
  const plain = await evaluatePolicy(
    heldOut,
    (state) => {
      const q = forward(starter, state, 1);
      return { action: argmax(q), qValues: q };
    },
    { dim: config.telemetry.stateDim, horizon: config.telemetry.horizon, rewards: config.rewards },
  );
  t.is(batched.episodes, 440, 'the whole test split by default');
  t.deepEqual(batched.confusion, plain.confusion);
  t.deepEqual(batched.actions, plain.actions);
  t.is(batched.meanEventsBeforeDecision, plain.meanEventsBeforeDecision);
  t.true(Math.abs(batched.meanReward - plain.meanReward) < 1e-9);
  t.true(Math.abs(batched.auc - plain.auc) < 1e-6, `${batched.auc} vs ${plain.auc}`);
  t.true(batched.balancedAccuracy > 0.8, 'the starter decides well on its held-out set');
});
