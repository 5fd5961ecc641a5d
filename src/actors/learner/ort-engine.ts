// The fast DQN engine: one training step is one ONNX graph run by onnxruntime-node — target
// computation (double DQN), forward, loss, backward GEMMs, global-norm clipping and Adam as
// elementwise ops. Weights and Adam moments go in as inputs and come back as outputs, so the
// engine holds them as plain Float32Arrays between steps. Same maths as the TensorFlow.js
// reference (tfjs-engine.ts); test/actors/learner-engines.test.ts holds them to it.
// Dueling heads are served by the reference engine only (the learner chooses it for them).

import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../onnx/builder.ts';
import type { SampleBatch } from '../../runtime/shared/replay-storage.ts';
import type { DqnEngine, EngineOptions, StepResult } from './engine.ts';
import { cloneParams, type QNetParams, tensorShapes } from './q-network.ts';

const f32 = (v: number) => Float32Array.of(v);

function forwardGraph(
  g: GraphBuilder,
  input: string,
  weights: readonly string[],
  layers: number,
  keep?: { z: string[]; h: string[] },
): string {
  let h = input;
  for (let l = 0; l < layers; l++) {
    keep?.h.push(h);
    const z = g.op('Gemm', [h, weights[2 * l]!, weights[2 * l + 1]!]);
    keep?.z.push(z);
    h = l < layers - 1 ? g.op('Relu', [z]) : z;
  }
  return h;
}

/** The training-step graph for a plain (non-dueling) network of the given dims. */
export function buildTrainingGraph(dims: readonly number[], opts: EngineOptions): Uint8Array {
  const g = new GraphBuilder();
  const layers = dims.length - 1;
  const D = dims[0]!;
  const A = dims.at(-1)!;
  const shapes = tensorShapes(dims, false);
  const x = g.input('x', ['B', D]);
  const xn = g.input('xn', ['B', D]);
  const a = g.input('a', ['B'], 'int64');
  const r = g.input('r', ['B']);
  const gam = g.input('g', ['B']); // γⁿ·(1 − done)
  const w = g.input('w', ['B']);
  const invN = g.input('inv_n', []);
  const lr = g.input('lr', []);
  const c1 = g.input('c1', []); // 1 / (1 − β1ᵗ)
  const c2 = g.input('c2', []); // 1 / (1 − β2ᵗ)
  const P = shapes.map((s, i) => g.input(`p${i}`, s));
  const T = shapes.map((s, i) => g.input(`t${i}`, s));
  const M = shapes.map((s, i) => g.input(`m${i}`, s));
  const V = shapes.map((s, i) => g.input(`v${i}`, s));

  const one = () => g.scalar(1);
  const half = () => g.scalar(0.5);
  const flat = g.int64Constant('flat', [-1]);
  const column = g.int64Constant('column', [-1, 1]);
  const axis0 = g.int64Constant('axis0', [0]);
  const axis1 = g.int64Constant('axis1', [1]);

  // Targets: y = r + γⁿ(1 − done)·Q_target(s′, a*)
  const qnTarget = forwardGraph(g, xn, T, layers);
  const chooser = opts.doubleDqn ? forwardGraph(g, xn, P, layers) : qnTarget;
  const best = g.op('ArgMax', [chooser], { axis: 1, keepdims: 1 });
  const boot = g.op('Reshape', [g.op('GatherElements', [qnTarget, best], { axis: 1 }), flat]);
  const y = g.op('Add', [r, g.op('Mul', [gam, boot])]);

  // Forward and loss
  const keep = { z: [] as string[], h: [] as string[] };
  const q = forwardGraph(g, x, P, layers, keep);
  const depth = g.int64Constant('depth', [A], []);
  const onOff = g.constant('on_off', Float32Array.of(0, 1), [2]);
  const taken = g.op('OneHot', [a, depth, onOff], { axis: -1 });
  const qa = g.op('ReduceSum', [g.op('Mul', [q, taken]), axis1], { keepdims: 0 });
  const d = g.op('Sub', [qa, y]);
  const absd = g.op('Abs', [d], {}, ['absd']);
  let elementwise: string;
  let dLoss: string;
  if (opts.loss === 'huber') {
    const m1 = g.op('Min', [absd, one()]);
    elementwise = g.op('Add', [
      g.op('Mul', [half(), g.op('Mul', [m1, m1])]),
      g.op('Sub', [absd, m1]),
    ]);
    dLoss = g.op('Clip', [d, g.scalar(-1), one()]);
  } else {
    elementwise = g.op('Mul', [half(), g.op('Mul', [d, d])]);
    dLoss = d;
  }
  g.op(
    'Mul',
    [g.op('ReduceSum', [g.op('Mul', [elementwise, w]), axis0], { keepdims: 0 }), invN],
    {},
    ['loss'],
  );

  // Backward
  const gd = g.op('Mul', [g.op('Mul', [dLoss, w]), invN]);
  let dz = g.op('Mul', [taken, g.op('Reshape', [gd, column])]);
  const grads: string[] = new Array(P.length);
  for (let l = layers - 1; l >= 0; l--) {
    grads[2 * l] = g.op('Gemm', [keep.h[l]!, dz], { transA: 1 });
    grads[2 * l + 1] = g.op('ReduceSum', [dz, axis0], { keepdims: 0 });
    if (l > 0) {
      const dh = g.op('Gemm', [dz, P[2 * l]!], { transB: 1 });
      const active = g.op(
        'Cast',
        [g.op('Greater', [keep.z[l - 1]!, g.constant(`zero_${l}`, f32(0), [])])],
        { to: 1 },
      );
      dz = g.op('Mul', [dh, active]);
    }
  }
  let clipped = grads;
  if (opts.gradClip > 0) {
    const norm = g.op('Sqrt', [
      g.op(
        'Sum',
        grads.map((gr) => g.op('ReduceSumSquare', [gr], { keepdims: 0 })),
      ),
    ]);
    const scale = g.op('Min', [
      one(),
      g.op('Div', [g.scalar(opts.gradClip), g.op('Max', [norm, g.scalar(1e-12)])]),
    ]);
    clipped = grads.map((gr) => g.op('Mul', [gr, scale]));
  }

  // Adam, as TensorFlow.js computes it: p −= lr·m̂ / (√v̂ + ε)
  const b1 = g.scalar(opts.adam.beta1);
  const nb1 = g.scalar(1 - opts.adam.beta1);
  const b2 = g.scalar(opts.adam.beta2);
  const nb2 = g.scalar(1 - opts.adam.beta2);
  const eps = g.scalar(opts.adam.epsilon);
  clipped.forEach((gr, i) => {
    const m = g.op('Add', [g.op('Mul', [b1, M[i]!]), g.op('Mul', [nb1, gr])], {}, [`m${i}_out`]);
    const v = g.op(
      'Add',
      [g.op('Mul', [b2, V[i]!]), g.op('Mul', [nb2, g.op('Mul', [gr, gr])])],
      {},
      [`v${i}_out`],
    );
    const step = g.op('Div', [
      g.op('Mul', [m, c1]),
      g.op('Add', [g.op('Sqrt', [g.op('Mul', [v, c2])]), eps]),
    ]);
    g.op('Sub', [P[i]!, g.op('Mul', [lr, step])], {}, [`p${i}_out`]);
  });

  shapes.forEach((s, i) => {
    g.output(`p${i}_out`, s);
    g.output(`m${i}_out`, s);
    g.output(`v${i}_out`, s);
  });
  g.output('loss', []);
  g.output('absd', ['B']);
  return g.build('warden_dqn_train_step');
}

/** Q-values with the weights as inputs: one session serves any weights. */
export function buildPredictGraph(dims: readonly number[]): Uint8Array {
  const g = new GraphBuilder();
  const shapes = tensorShapes(dims, false);
  const x = g.input('state', ['N', dims[0]!]);
  const P = shapes.map((s, i) => g.input(`p${i}`, s));
  const q = forwardGraph(g, x, P, dims.length - 1);
  g.op('Identity', [q], {}, ['q_values']);
  g.output('q_values', ['N', dims.at(-1)!]);
  return g.build('warden_dqn_predict');
}

const sessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

export class OrtEngine implements DqnEngine {
  readonly name = 'onnxruntime';
  readonly #train: ort.InferenceSession;
  readonly #predict: ort.InferenceSession;
  readonly #shapes: number[][];
  readonly #opts: EngineOptions;
  #params: QNetParams;
  #target: Float32Array[];
  #m: Float32Array[];
  #v: Float32Array[];
  #t = 0;
  #lr: number;

  static async create(params: QNetParams, opts: EngineOptions): Promise<OrtEngine> {
    if (params.dueling)
      throw new Error('OrtEngine serves plain networks; use TfjsEngine for dueling heads');
    const train = await ort.InferenceSession.create(
      buildTrainingGraph(params.dims, opts),
      sessionOptions,
    );
    const predict = await ort.InferenceSession.create(
      buildPredictGraph(params.dims),
      sessionOptions,
    );
    return new OrtEngine(train, predict, params, opts);
  }

  private constructor(
    train: ort.InferenceSession,
    predict: ort.InferenceSession,
    params: QNetParams,
    opts: EngineOptions,
  ) {
    this.#train = train;
    this.#predict = predict;
    this.#opts = opts;
    this.#lr = opts.learningRate;
    this.#shapes = tensorShapes(params.dims, false);
    this.#params = cloneParams(params);
    this.#target = params.tensors.map((t) => t.slice());
    this.#m = params.tensors.map((t) => new Float32Array(t.length));
    this.#v = params.tensors.map((t) => new Float32Array(t.length));
  }

  async step(batch: SampleBatch): Promise<StepResult> {
    const n = batch.size;
    const d = this.#params.dims[0]!;
    const gam = new Float32Array(n);
    for (let i = 0; i < n; i++) gam[i] = batch.discounts[i]! * (1 - batch.dones[i]!);
    const actions = new BigInt64Array(n);
    for (let i = 0; i < n; i++) actions[i] = BigInt(batch.actions[i]!);
    this.#t++;
    const { beta1, beta2 } = this.#opts.adam;
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', batch.states.subarray(0, n * d), [n, d]),
      xn: new ort.Tensor('float32', batch.nextStates.subarray(0, n * d), [n, d]),
      a: new ort.Tensor('int64', actions, [n]),
      r: new ort.Tensor('float32', batch.returns.subarray(0, n), [n]),
      g: new ort.Tensor('float32', gam, [n]),
      w: new ort.Tensor('float32', batch.weights.subarray(0, n), [n]),
      inv_n: new ort.Tensor('float32', f32(1 / n), []),
      lr: new ort.Tensor('float32', f32(this.#lr), []),
      c1: new ort.Tensor('float32', f32(1 / (1 - beta1 ** this.#t)), []),
      c2: new ort.Tensor('float32', f32(1 / (1 - beta2 ** this.#t)), []),
    };
    this.#shapes.forEach((s, i) => {
      feeds[`p${i}`] = new ort.Tensor('float32', this.#params.tensors[i]!, s);
      feeds[`t${i}`] = new ort.Tensor('float32', this.#target[i]!, s);
      feeds[`m${i}`] = new ort.Tensor('float32', this.#m[i]!, s);
      feeds[`v${i}`] = new ort.Tensor('float32', this.#v[i]!, s);
    });
    const out = await this.#train.run(feeds);
    this.#params = {
      ...this.#params,
      tensors: this.#shapes.map((_, i) => out[`p${i}_out`]!.data as Float32Array),
    };
    this.#m = this.#shapes.map((_, i) => out[`m${i}_out`]!.data as Float32Array);
    this.#v = this.#shapes.map((_, i) => out[`v${i}_out`]!.data as Float32Array);
    return { loss: (out.loss!.data as Float32Array)[0]!, tdErrors: out.absd!.data as Float32Array };
  }

  async predict(states: Float32Array, n: number): Promise<Float32Array> {
    const d = this.#params.dims[0]!;
    const feeds: Record<string, ort.Tensor> = {
      state: new ort.Tensor('float32', states.subarray(0, n * d), [n, d]),
    };
    this.#shapes.forEach((s, i) => {
      feeds[`p${i}`] = new ort.Tensor('float32', this.#params.tensors[i]!, s);
    });
    const out = await this.#predict.run(feeds);
    return out.q_values!.data as Float32Array;
  }

  syncTarget(tau: number): void {
    this.#target = this.#params.tensors.map((p, i) => {
      if (tau >= 1) return p.slice();
      const t = this.#target[i]!;
      const next = new Float32Array(p.length);
      for (let k = 0; k < p.length; k++) next[k] = tau * p[k]! + (1 - tau) * t[k]!;
      return next;
    });
  }

  getParams(): QNetParams {
    return cloneParams(this.#params);
  }

  setParams(params: QNetParams): void {
    this.#params = cloneParams(params);
    this.#target = params.tensors.map((t) => t.slice());
    this.#m = params.tensors.map((t) => new Float32Array(t.length));
    this.#v = params.tensors.map((t) => new Float32Array(t.length));
    this.#t = 0;
  }

  setLearningRate(lr: number): void {
    this.#lr = lr;
  }

  dispose(): void {
    void this.#train.release();
    void this.#predict.release();
  }
}
