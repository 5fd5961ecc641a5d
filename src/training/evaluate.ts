// `warden eval`: the agent (an ONNX model, greedy) against two baselines on the same episodes —
// the rule-based policy and a logistic regression that sees the whole trace. Detection is the
// stage-1 verdict on the original file; REQUEST_REVIEW holds the file, so it counts as malicious.

import { StateAccumulator } from '../actors/adapter/state-vector.ts';
import { verdictReward } from '../actors/episodes/rewards.ts';
import {
  type Decision,
  type Policy,
  runStage,
  type StageConfig,
} from '../actors/episodes/two-stage.ts';
import { chooseAction } from '../actors/inference/decide.ts';
import { rulePolicy } from '../actors/inference/rules.ts';
import { ACTION_NAMES, ACTIONS } from '../messages/action.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import { LogisticRegression } from './logistic.ts';
import { auc, balancedAccuracy, type Confusion, confusion, tprAtFpr } from './metrics.ts';

export interface DetectionReport {
  readonly episodes: number;
  readonly confusion: Confusion;
  readonly auc: number;
  readonly balancedAccuracy: number;
  readonly tprAt1PctFpr: number;
  readonly meanEventsBeforeDecision: number;
  /** Mean stage-1 reward per episode (the rewards of configuration, as the agent earns them). */
  readonly meanReward: number;
  readonly decidedShare: number;
  readonly actions: Readonly<Record<string, number>>;
}

/** The policy's action for Q-values: the inference pool's argmax (property 17). */
export { argmaxQ as argmax } from '../actors/inference/decide.ts';

/**
 * A policy that gathers the states asked for in one turn of the event loop and gets their
 * Q-values in one call: with evaluatePolicy's `concurrent` option, one call per step of all
 * episodes instead of one per state. Actions as the served policy takes them (`verdictMargin`:
 * inference.verdictMargin).
 */
export function batchedPolicy(
  predict: (states: Float32Array, n: number) => Promise<Float32Array>,
  dim: number,
  verdictMargin = 0,
): Policy {
  let waiting: {
    state: Float32Array;
    resolve: (d: Decision) => void;
    reject: (e: unknown) => void;
  }[] = [];
  const flush = async () => {
    const batch = waiting;
    waiting = [];
    const states = new Float32Array(batch.length * dim);
    for (const [i, w] of batch.entries()) states.set(w.state, i * dim);
    try {
      const q = await predict(states, batch.length);
      const actions = q.length / batch.length;
      for (const [i, w] of batch.entries()) {
        const row = q.slice(i * actions, (i + 1) * actions);
        w.resolve({ action: chooseAction(row, 0, verdictMargin), qValues: row });
      }
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  };
  return (state) =>
    new Promise<Decision>((resolve, reject) => {
      if (waiting.length === 0) setImmediate(() => void flush());
      waiting.push({ state, resolve, reject });
    });
}

/** Runs stage 1 of every trace with `policy` and scores its detection. */
export async function evaluatePolicy(
  traces: readonly RecordedTrace[],
  policy: Policy,
  cfg: StageConfig,
  options: { readonly concurrent?: boolean } = {},
): Promise<DetectionReport> {
  const scores: number[] = [];
  const predicted: boolean[] = [];
  const truth: boolean[] = [];
  const actions: Record<string, number> = {};
  let events = 0;
  let decided = 0;
  let reward = 0;
  const run = (trace: RecordedTrace, i: number) =>
    trace.episode.label === 'unknown'
      ? undefined
      : runStage(trace.events, 1, trace.episode.label, false, policy, cfg, i);
  // Concurrent: every episode at once, in step (for batchedPolicy); the results in trace order.
  const stages = options.concurrent ? await Promise.all(traces.map(run)) : undefined;
  for (const [i, trace] of traces.entries()) {
    if (trace.episode.label === 'unknown') continue;
    const r = stages ? stages[i]! : (await run(trace, i))!;
    const last = r.transitions.at(-1)?.action;
    if (last !== undefined && r.decided)
      actions[ACTION_NAMES[last]!] = (actions[ACTION_NAMES[last]!] ?? 0) + 1;
    else actions['(end of run)'] = (actions['(end of run)'] ?? 0) + 1;
    scores.push(r.score);
    predicted.push(r.verdict !== 'benign');
    truth.push(trace.episode.label === 'malicious');
    events += r.eventsObserved;
    reward += r.reward;
    if (r.decided) decided++;
  }
  const c = confusion(predicted, truth);
  return {
    episodes: truth.length,
    confusion: c,
    auc: auc(scores, truth),
    balancedAccuracy: balancedAccuracy(c),
    tprAt1PctFpr: tprAtFpr(scores, truth, 0.01),
    meanEventsBeforeDecision: truth.length ? events / truth.length : 0,
    meanReward: truth.length ? reward / truth.length : 0,
    decidedShare: truth.length ? decided / truth.length : 0,
    actions,
  };
}

/** The rule table as a Policy: its pseudo Q-values rank a malicious rule by its confidence. */
export function rulesAsPolicy(dim: number): Policy {
  const rules = rulePolicy(dim);
  return (state) => {
    const d = rules(state);
    const q = new Float32Array(6);
    q[ACTIONS.RELEASE] = 0;
    q[d.action] =
      d.action === ACTIONS.TERMINATE || d.action === ACTIONS.QUARANTINE ? d.confidence : 1;
    return { action: d.action, qValues: q };
  };
}

function finalState(trace: RecordedTrace, cfg: StageConfig): Float32Array {
  const acc = new StateAccumulator(cfg.dim, cfg.horizon);
  for (const e of trace.events.slice(0, cfg.horizon)) acc.add(e);
  return acc.vector(1, 0, false);
}

/** Logistic regression on whole traces: trained on `train`, reported on `test`. */
export function evaluateLogistic(
  train: readonly RecordedTrace[],
  test: readonly RecordedTrace[],
  cfg: StageConfig,
): DetectionReport {
  const labelled = (ts: readonly RecordedTrace[]) =>
    ts.filter((t) => t.episode.label !== 'unknown');
  const tr = labelled(train);
  const te = labelled(test);
  const model = new LogisticRegression(cfg.dim).fit(
    tr.map((t) => finalState(t, cfg)),
    tr.map((t) => t.episode.label === 'malicious'),
  );
  const scores = te.map((t) => model.score(finalState(t, cfg)));
  const truth = te.map((t) => t.episode.label === 'malicious');
  const c = confusion(
    scores.map((s) => s > 0),
    truth,
  );
  return {
    episodes: te.length,
    confusion: c,
    auc: auc(scores, truth),
    balancedAccuracy: balancedAccuracy(c),
    tprAt1PctFpr: tprAtFpr(scores, truth, 0.01),
    meanEventsBeforeDecision:
      te.reduce((n, t) => n + Math.min(t.events.length, cfg.horizon), 0) / Math.max(1, te.length),
    // What deciding after the whole trace earns: a step cost per event and the verdict's reward.
    meanReward:
      te.reduce(
        (sum, t, i) =>
          sum +
          Math.min(t.events.length, cfg.horizon) * cfg.rewards.perEvent +
          verdictReward(scores[i]! > 0 ? 'malicious' : 'benign', t.episode.label, cfg.rewards),
        0,
      ) / Math.max(1, te.length),
    decidedShare: 1,
    actions: {},
  };
}
