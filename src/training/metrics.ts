// Detection metrics over per-episode scores and verdicts: confusion matrix, AUC (Mann–Whitney,
// ties counted half), balanced accuracy, and TPR at a fixed FPR from the ROC curve.

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function confusion(
  predictedMalicious: readonly boolean[],
  malicious: readonly boolean[],
): Confusion {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  predictedMalicious.forEach((p, i) => {
    const m = malicious[i]!;
    if (p && m) c.tp++;
    else if (p) c.fp++;
    else if (m) c.fn++;
    else c.tn++;
  });
  return c;
}

export function balancedAccuracy(c: Confusion): number {
  const tpr = c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : 0;
  const tnr = c.tn + c.fp > 0 ? c.tn / (c.tn + c.fp) : 0;
  return (tpr + tnr) / 2;
}

/** Probability that a random malicious episode scores above a random benign one. */
export function auc(scores: readonly number[], malicious: readonly boolean[]): number {
  const idx = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  let rankSumPos = 0;
  let pos = 0;
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (malicious[idx[k]![1]]) {
        rankSumPos += avgRank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = scores.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Largest TPR whose threshold keeps the FPR at or below maxFpr. */
export function tprAtFpr(
  scores: readonly number[],
  malicious: readonly boolean[],
  maxFpr: number,
): number {
  const pos = malicious.filter(Boolean).length;
  const neg = malicious.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
  let tp = 0;
  let fp = 0;
  let best = 0;
  for (let k = 0; k < order.length; k++) {
    if (malicious[order[k]![1]]) tp++;
    else fp++;
    const nextSame = k + 1 < order.length && order[k + 1]![0] === order[k]![0];
    if (!nextSame && fp / neg <= maxFpr) best = Math.max(best, tp / pos);
  }
  return best;
}
