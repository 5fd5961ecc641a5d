// The reference DQN engine on TensorFlow.js: the native backend (@tensorflow/tfjs-node) when it is
// installed, otherwise the wasm backend. Plain tf ops, written to be read; every other engine is
// tested against this one.

import * as tf from '@tensorflow/tfjs';
import type { SampleBatch } from '../../runtime/shared/replay-storage.ts';
import type { DqnEngine, EngineOptions, StepResult } from './engine.ts';
import { cloneParams, type QNetParams, tensorShapes } from './q-network.ts';

let backendReady: Promise<string> | undefined;

/** Chooses the fastest TensorFlow.js backend present: native, else wasm, else cpu. */
export function tfjsBackend(): Promise<string> {
  backendReady ??= (async () => {
    try {
      await import(/* optional */ '@tensorflow/tfjs-node' as string);
      if (await tf.setBackend('tensorflow')) return 'tensorflow';
    } catch {
      // not installed here (its install downloads libtensorflow)
    }
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        return 'wasm';
      }
    } catch {
      // fall through to cpu
    }
    await tf.setBackend('cpu');
    return 'cpu';
  })();
  return backendReady;
}

export class TfjsEngine implements DqnEngine {
  readonly name: string;
  #params: QNetParams;
  #policy: tf.Variable[] = [];
  #target: tf.Tensor[] = [];
  #optimizer: tf.AdamOptimizer;
  readonly #opts: EngineOptions;
  #lr: number;

  static async create(params: QNetParams, opts: EngineOptions): Promise<TfjsEngine> {
    const backend = await tfjsBackend();
    return new TfjsEngine(params, opts, backend);
  }

  private constructor(params: QNetParams, opts: EngineOptions, backend: string) {
    this.name = `tfjs-${backend}`;
    this.#opts = opts;
    this.#lr = opts.learningRate;
    this.#params = cloneParams(params);
    this.#optimizer = this.#newOptimizer();
    this.#load(params);
  }

  #newOptimizer(): tf.AdamOptimizer {
    const { beta1, beta2, epsilon } = this.#opts.adam;
    return tf.train.adam(this.#lr, beta1, beta2, epsilon);
  }

  #load(params: QNetParams): void {
    tf.dispose([...this.#policy, ...this.#target]);
    const shapes = tensorShapes(params.dims, params.dueling);
    this.#policy = params.tensors.map((t, i) => tf.variable(tf.tensor(t, shapes[i]), true));
    this.#target = params.tensors.map((t, i) => tf.tensor(t, shapes[i]));
  }

  #forward(weights: readonly tf.Tensor[], x: tf.Tensor2D): tf.Tensor2D {
    const layers = this.#params.dims.length - 1;
    let h: tf.Tensor2D = x;
    let lastHidden = x;
    for (let l = 0; l < layers; l++) {
      const y = tf.add(
        tf.matMul(h, weights[2 * l] as tf.Tensor2D),
        weights[2 * l + 1]!,
      ) as tf.Tensor2D;
      if (l === layers - 1) lastHidden = h;
      h = l < layers - 1 ? tf.relu(y) : y;
    }
    if (!this.#params.dueling) return h;
    const v = tf.add(
      tf.matMul(lastHidden, weights[2 * layers] as tf.Tensor2D),
      weights[2 * layers + 1]!,
    );
    return tf.add(v, tf.sub(h, tf.mean(h, 1, true))) as tf.Tensor2D;
  }

  async step(batch: SampleBatch): Promise<StepResult> {
    const n = batch.size;
    const d = this.#params.dims[0]!;
    const actions = this.#params.dims.at(-1)!;
    const { loss, absd } = tf.tidy(() => {
      const x = tf.tensor2d(batch.states.subarray(0, n * d), [n, d]);
      const xn = tf.tensor2d(batch.nextStates.subarray(0, n * d), [n, d]);
      const qTargetNext = this.#forward(this.#target, xn);
      const chooser = this.#opts.doubleDqn ? this.#forward(this.#policy, xn) : qTargetNext;
      const best = tf.oneHot(tf.argMax(chooser, 1), actions);
      const bootstrap = tf.sum(tf.mul(qTargetNext, best), 1);
      const notDone = tf.sub(1, tf.tensor1d(batch.dones.subarray(0, n)));
      const y = tf.add(
        tf.tensor1d(batch.returns.subarray(0, n)),
        tf.mul(tf.mul(tf.tensor1d(batch.discounts.subarray(0, n)), notDone), bootstrap),
      );
      const taken = tf.oneHot(tf.tensor1d(batch.actions.subarray(0, n), 'int32'), actions);
      const w = tf.tensor1d(batch.weights.subarray(0, n));
      let absd: tf.Tensor = tf.zeros([n]);
      const f = () => {
        const qa = tf.sum(tf.mul(this.#forward(this.#policy, x), taken), 1);
        const delta = tf.sub(qa, y);
        absd = tf.keep(tf.abs(delta));
        const elementwise =
          this.#opts.loss === 'huber'
            ? tf.add(tf.mul(0.5, tf.square(tf.minimum(absd, 1))), tf.sub(absd, tf.minimum(absd, 1)))
            : tf.mul(0.5, tf.square(delta));
        return tf.div(tf.sum(tf.mul(elementwise, w)), n) as tf.Scalar;
      };
      const { value, grads } = tf.variableGrads(f, this.#policy);
      let scaled = grads;
      if (this.#opts.gradClip > 0) {
        const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(this.#opts.gradClip, tf.maximum(norm, 1e-12)));
        scaled = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, scale)]));
      }
      this.#optimizer.applyGradients(
        Object.entries(scaled).map(([name, tensor]) => ({ name, tensor })),
      );
      return { loss: value, absd };
    });
    const [lossValue, td] = await Promise.all([loss.data(), absd.data()]);
    tf.dispose([loss, absd]);
    return { loss: lossValue[0]!, tdErrors: Float32Array.from(td) };
  }

  async predict(states: Float32Array, n: number): Promise<Float32Array> {
    const d = this.#params.dims[0]!;
    const q = tf.tidy(() =>
      this.#forward(this.#policy, tf.tensor2d(states.subarray(0, n * d), [n, d])),
    );
    const out = (await q.data()) as Float32Array;
    q.dispose();
    return out;
  }

  syncTarget(tau: number): void {
    const next = this.#policy.map((p, i) =>
      tau >= 1
        ? tf.clone(p)
        : tf.tidy(() => tf.add(tf.mul(tau, p), tf.mul(1 - tau, this.#target[i]!))),
    );
    tf.dispose(this.#target);
    this.#target = next;
  }

  getParams(): QNetParams {
    return {
      dims: [...this.#params.dims],
      dueling: this.#params.dueling,
      tensors: this.#policy.map((v) => v.dataSync().slice() as Float32Array),
    };
  }

  setParams(params: QNetParams): void {
    this.#params = cloneParams(params);
    this.#load(params);
    this.#optimizer.dispose();
    this.#optimizer = this.#newOptimizer();
  }

  setLearningRate(lr: number): void {
    this.#lr = lr;
    // AdamOptimizer reads `learningRate` on every step; replacing the optimizer would lose its moments.
    (this.#optimizer as unknown as { learningRate: number }).learningRate = lr;
  }

  dispose(): void {
    tf.dispose([...this.#policy, ...this.#target]);
    this.#optimizer.dispose();
  }
}
