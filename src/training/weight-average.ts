// Weight averaging (stochastic weight averaging, Izmailov et al., 2018): the mean of the weights
// taken at points along one training run. DQN's greedy policy swings from snapshot to snapshot
// (on the Oliveira split the held-out AUC of one run moved between 0.67 and 0.88 from one tenth
// of training to the next); the mean sits between those swings and ranks more steadily than any
// one of them. `warden train` averages over the last two thirds of its run; the learner actor
// over a sliding window of its last snapshots. Sums are kept in float64.

import type { QNetParams } from '../actors/learner/q-network.ts';
import { LayoutError } from '../runtime/errors.ts';

export class WeightAverage {
  readonly #window: number;
  /** The snapshots in the window (only kept when the window is finite). */
  readonly #ring: Float32Array[][] = [];
  #sums: Float64Array[] | undefined;
  #shape: Pick<QNetParams, 'dims' | 'dueling'> | undefined;
  #count = 0;

  /** @param window the mean is of the last this many snapshots (default: all of them). */
  constructor(window = Number.POSITIVE_INFINITY) {
    if (!(window >= 1)) throw new RangeError(`weight average window must be ≥ 1, got ${window}`);
    this.#window = window;
  }

  /** The window: the mean is of at most this many snapshots. */
  get window(): number {
    return this.#window;
  }

  /** Snapshots in the mean. */
  get count(): number {
    return this.#count;
  }

  add(p: QNetParams): void {
    if (!this.#sums || !this.#shape) {
      this.#shape = { dims: [...p.dims], dueling: p.dueling };
      this.#sums = p.tensors.map((t) => new Float64Array(t.length));
    }
    const sums = this.#sums;
    if (
      p.dueling !== this.#shape.dueling ||
      p.dims.join() !== this.#shape.dims.join() ||
      p.tensors.length !== sums.length ||
      p.tensors.some((t, i) => t.length !== sums[i]!.length)
    )
      throw new LayoutError('weight average: a snapshot of a different network shape');
    addInto(sums, p.tensors, 1);
    this.#count++;
    if (Number.isFinite(this.#window)) {
      this.#ring.push(p.tensors.map((t) => t.slice()));
      if (this.#ring.length > this.#window) {
        addInto(sums, this.#ring.shift()!, -1);
        this.#count--;
      }
    }
  }

  /** The mean of the snapshots in the window; undefined before the first. */
  mean(): QNetParams | undefined {
    if (!this.#sums || !this.#shape || this.#count === 0) return undefined;
    const n = this.#count;
    return {
      dims: [...this.#shape.dims],
      dueling: this.#shape.dueling,
      tensors: this.#sums.map((s) => Float32Array.from(s, (v) => v / n)),
    };
  }

  /** Forgets every snapshot (the learner went back to other weights). */
  clear(): void {
    this.#ring.length = 0;
    this.#sums = undefined;
    this.#shape = undefined;
    this.#count = 0;
  }
}

function addInto(sums: Float64Array[], tensors: readonly Float32Array[], sign: 1 | -1): void {
  for (const [i, t] of tensors.entries()) {
    const s = sums[i]!;
    for (let j = 0; j < t.length; j++) s[j]! += sign * t[j]!;
  }
}
