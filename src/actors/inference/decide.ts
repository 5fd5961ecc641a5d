// Turning Q-values into a decision: argmax (property 17: first maximum wins ties; NaN never wins,
// all-NaN falls back to CONTINUE) and a confidence score — the softmax probability of the chosen
// action, so 1/6 means "no preference" and 1 means "certain".

import { ACTIONS, type ActionId } from '../../messages/action.ts';

export function argmaxQ(q: ArrayLike<number>, offset = 0, n = 6): ActionId {
  let best = -1;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let a = 0; a < n; a++) {
    const v = q[offset + a]!;
    if (v > bestValue) {
      bestValue = v;
      best = a;
    }
  }
  if (best < 0) {
    // every value is NaN or −∞: nothing to prefer, observe further
    for (let a = 0; a < n; a++)
      if (q[offset + a] === Number.NEGATIVE_INFINITY) return a as ActionId;
    return ACTIONS.CONTINUE;
  }
  return best as ActionId;
}

/**
 * The greedy action under a verdict margin: a stage-ending action (terminate, quarantine, review,
 * release) is taken only when its Q-value beats the better of CONTINUE and RAISE_ISOLATION by at
 * least `margin`; short of that the agent observes on with the better of those two. 0 = argmaxQ.
 * Broken observing values (NaN) do not hold a verdict back.
 */
export function chooseAction(q: ArrayLike<number>, offset = 0, margin = 0): ActionId {
  const best = argmaxQ(q, offset);
  if (margin <= 0 || best < ACTIONS.TERMINATE) return best;
  const observe = argmaxQ(q, offset, 2);
  const observeValue = q[offset + observe]!;
  if (!(observeValue > Number.NEGATIVE_INFINITY)) return best;
  return q[offset + best]! - observeValue >= margin ? best : observe;
}

export function confidenceOf(q: ArrayLike<number>, offset: number, chosen: number, n = 6): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let a = 0; a < n; a++) {
    const v = q[offset + a]!;
    if (v > max) max = v;
  }
  if (!Number.isFinite(max)) return 1 / n;
  let sum = 0;
  let mine = 0;
  for (let a = 0; a < n; a++) {
    const v = q[offset + a]!;
    const e = Number.isFinite(v) ? Math.exp(v - max) : 0;
    sum += e;
    if (a === chosen) mine = e;
  }
  return sum > 0 ? mine / sum : 1 / n;
}
