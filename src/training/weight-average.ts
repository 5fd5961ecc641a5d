// Stochastic weight averaging (Izmailov et al., 2018): the mean of the weights taken at points
// along one training run. DQN's greedy policy swings from snapshot to snapshot (on the Oliveira
// split the held-out AUC of the same run moved between 0.67 and 0.88 from one tenth of training
// to the next); the average sits between those swings and ranks more steadily than any one of
// them. Sums are kept in float64 so many snapshots add without drift.

import type { QNetParams } from '../actors/learner/q-network.ts';
import { LayoutError } from '../runtime/errors.ts';

export class WeightAverage {
  #sums: Float64Array[] | undefined;
  #shape: Pick<QNetParams, 'dims' | 'dueling'> | undefined;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(p: QNetParams): void {
    if (!this.#sums || !this.#shape) {
      this.#shape = { dims: [...p.dims], dueling: p.dueling };
      this.#sums = p.tensors.map((t) => Float64Array.from(t));
    } else {
      const sums = this.#sums;
      if (
        p.dueling !== this.#shape.dueling ||
        p.dims.join() !== this.#shape.dims.join() ||
        p.tensors.length !== sums.length ||
        p.tensors.some((t, i) => t.length !== sums[i]!.length)
      )
        throw new LayoutError('weight average: a snapshot of a different network shape');
      for (const [i, t] of p.tensors.entries()) {
        const s = sums[i]!;
        for (let j = 0; j < t.length; j++) s[j]! += t[j]!;
      }
    }
    this.#count++;
  }

  /** The mean of the snapshots added so far; undefined before the first. */
  mean(): QNetParams | undefined {
    if (!this.#sums || !this.#shape) return undefined;
    const n = this.#count;
    return {
      dims: [...this.#shape.dims],
      dueling: this.#shape.dueling,
      tensors: this.#sums.map((s) => Float32Array.from(s, (v) => v / n)),
    };
  }
}
