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
