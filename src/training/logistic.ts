// Baseline: logistic regression on the whole trace's final state vector (it sees every event,
// the agent decides early). Full-batch gradient descent with L2, deterministic.

export class LogisticRegression {
  readonly w: Float64Array;
  b = 0;

  constructor(readonly dim: number) {
    this.w = new Float64Array(dim);
  }

  score(x: Float32Array): number {
    let z = this.b;
    for (let i = 0; i < this.dim; i++) z += this.w[i]! * x[i]!;
    return z;
  }

  fit(
    xs: readonly Float32Array[],
    ys: readonly boolean[],
    epochs = 500,
    lr = 0.5,
    l2 = 1e-4,
  ): this {
    const n = xs.length;
    const grad = new Float64Array(this.dim);
    for (let e = 0; e < epochs; e++) {
      grad.fill(0);
      let gb = 0;
      for (let k = 0; k < n; k++) {
        const p = 1 / (1 + Math.exp(-this.score(xs[k]!)));
        const err = p - (ys[k] ? 1 : 0);
        const x = xs[k]!;
        for (let i = 0; i < this.dim; i++) grad[i]! += err * x[i]!;
        gb += err;
      }
      for (let i = 0; i < this.dim; i++) this.w[i]! -= lr * (grad[i]! / n + l2 * this.w[i]!);
      this.b -= (lr * gb) / n;
    }
    return this;
  }
}
