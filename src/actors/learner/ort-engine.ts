// The fast DQN engine: one training step is one ONNX graph run by onnxruntime-node — target
// computation (double DQN), forward, loss, backward GEMMs and the global gradient norm — and
// then Adam as one WebAssembly SIMD pass (adam-kernel.ts). The weights and Adam moments live in
// that kernel's memory as one flat vector each (every layer's weights and biases end to end, in
// tensorShapes order); the graph reads the weights through per-tensor views of it and returns
// the gradient as one flat vector and the clipping factor as one number. Same maths as the
// TensorFlow.js reference (tfjs-engine.ts); test/actors/learner.test.ts holds the two to it.
// History, at batch 64: Adam per tensor inside the graph was 6 × 15 small elementwise nodes
// whose per-node overhead cost more than their arithmetic (1.7 ms per step); over the flat
// vector it was 14 passes plus three vector outputs (1.4 ms, of which Adam 0.25); the kernel
// does Adam in 0.05 ms.
// Dueling heads are served by the reference engine only (the learner chooses it for them).

import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../onnx/builder.ts';
import type { SampleBatch } from '../../runtime/shared/replay-storage.ts';
import { AdamKernel } from './adam-kernel.ts';
import type { DqnEngine, EngineOptions, StepResult } from './engine.ts';
import { type QNetParams, tensorShapes } from './q-network.ts';

const f32 = (v: number) => Float32Array.of(v);

function forwardGraph(
  g: GraphBuilder,
  input: string,
  weights: readonly string[],
  layers: number,
  keep?: { h: string[] },
): string {
  let h = input;
  for (let l = 0; l < layers; l++) {
    keep?.h.push(h);
    const z = g.op('Gemm', [h, weights[2 * l]!, weights[2 * l + 1]!]);
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
  const { total } = flatLayout(shapes);
  const P = shapes.map((s, i) => g.input(`p${i}`, s));
  const T = shapes.map((s, i) => g.input(`t${i}`, s));

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
  const keep = { h: [] as string[] };
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
      // ReLU′(z) = 1 where z > 0 = Sign(ReLU(z)), read off the layer's input h: z itself then
      // feeds only its ReLU, and ORT fuses the two into one FusedGemm.
      dz = g.op('Mul', [dh, g.op('Sign', [keep.h[l]!])]);
    }
  }
  g.op(
    'Concat',
    grads.map((gr) => g.op('Reshape', [gr, flat])),
    { axis: 0 },
    ['grad'],
  );
  // Clipping multiplies the whole gradient by one number, which Adam (adam-kernel.ts) applies.
  if (opts.gradClip > 0) {
    const norm = g.op('Sqrt', [g.op('ReduceSumSquare', ['grad'], { keepdims: 0 })]);
    g.op(
      'Min',
      [one(), g.op('Div', [g.scalar(opts.gradClip), g.op('Max', [norm, g.scalar(1e-12)])])],
      {},
      ['grad_scale'],
    );
  } else {
    g.op('Identity', [one()], {}, ['grad_scale']);
  }

  g.output('grad', [total]);
  g.output('grad_scale', []);
  g.output('loss', []);
  g.output('absd', ['B']);
  return g.build('warden_dqn_train_step');
}

/** Where each tensor starts in the flat parameter vector (offsets[i] … offsets[i + 1]). */
export function flatLayout(shapes: readonly (readonly number[])[]): {
  total: number;
  offsets: number[];
} {
  const offsets = [0];
  for (const s of shapes) offsets.push(offsets.at(-1)! + s.reduce((a, b) => a * b, 1));
  return { total: offsets.at(-1)!, offsets };
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

/** Q-values of fixed weights, many states per call (the held-out evaluation). */
export interface Predictor {
  predict(states: Float32Array, n: number): Promise<Float32Array>;
  dispose(): void;
}

/** ONNX Runtime's forward pass over fixed plain (not dueling) weights. */
export async function createPredictor(params: QNetParams): Promise<Predictor> {
  if (params.dueling) throw new Error('createPredictor serves plain networks');
  const session = await ort.InferenceSession.create(buildPredictGraph(params.dims), sessionOptions);
  const d = params.dims[0]!;
  const weights = Object.fromEntries(
    tensorShapes(params.dims, false).map((shape, i) => [
      `p${i}`,
      new ort.Tensor('float32', params.tensors[i]!, shape),
    ]),
  );
  return {
    async predict(states, n) {
      const out = await session.run({
        state: new ort.Tensor('float32', states.subarray(0, n * d), [n, d]),
        ...weights,
      });
      return out.q_values!.data as Float32Array;
    },
    dispose: () => void session.release(),
  };
}

export class OrtEngine implements DqnEngine {
  readonly name = 'onnxruntime';
  readonly #train: ort.InferenceSession;
  readonly #predict: ort.InferenceSession;
  readonly #shapes: number[][];
  readonly #offsets: number[];
  readonly #dims: readonly number[];
  /** Weights and Adam moments (flat vectors, flatLayout) and the Adam step. */
  readonly #adam: AdamKernel;
  /** Target weights, one flat vector. */
  #target: Float32Array;
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
    this.#lr = opts.learningRate;
    this.#dims = [...params.dims];
    this.#shapes = tensorShapes(params.dims, false);
    const { total, offsets } = flatLayout(this.#shapes);
    this.#offsets = offsets;
    this.#adam = new AdamKernel(total, opts.adam);
    this.#load(params);
    this.#target = this.#adam.params.slice();
  }

  /** Writes every tensor of `params` into the weight vector. */
  #load(params: QNetParams): void {
    for (const [i, t] of params.tensors.entries()) this.#adam.params.set(t, this.#offsets[i]!);
  }

  /** Views of the weight vector, one per tensor. */
  #tensors(flat = this.#adam.params): Float32Array[] {
    return this.#shapes.map((_, i) => flat.subarray(this.#offsets[i]!, this.#offsets[i + 1]!));
  }

  /** Feeds `${prefix}0…` as views of a flat vector (ORT reads them in place). */
  #perTensor(prefix: string, flat: Float32Array): Record<string, ort.Tensor> {
    const views = this.#tensors(flat);
    return Object.fromEntries(
      this.#shapes.map((s, i) => [`${prefix}${i}`, new ort.Tensor('float32', views[i]!, s)]),
    );
  }

  async step(batch: SampleBatch): Promise<StepResult> {
    const n = batch.size;
    const d = this.#dims[0]!;
    const gam = new Float32Array(n);
    for (let i = 0; i < n; i++) gam[i] = batch.discounts[i]! * (1 - batch.dones[i]!);
    const actions = new BigInt64Array(n);
    for (let i = 0; i < n; i++) actions[i] = BigInt(batch.actions[i]!);
    this.#t++;
    const out = await this.#train.run({
      x: new ort.Tensor('float32', batch.states.subarray(0, n * d), [n, d]),
      xn: new ort.Tensor('float32', batch.nextStates.subarray(0, n * d), [n, d]),
      a: new ort.Tensor('int64', actions, [n]),
      r: new ort.Tensor('float32', batch.returns.subarray(0, n), [n]),
      g: new ort.Tensor('float32', gam, [n]),
      w: new ort.Tensor('float32', batch.weights.subarray(0, n), [n]),
      inv_n: new ort.Tensor('float32', f32(1 / n), []),
      ...this.#perTensor('p', this.#adam.params),
      ...this.#perTensor('t', this.#target),
    });
    this.#adam.grad.set(out.grad!.data as Float32Array);
    this.#adam.apply(this.#t, this.#lr, (out.grad_scale!.data as Float32Array)[0]!);
    return { loss: (out.loss!.data as Float32Array)[0]!, tdErrors: out.absd!.data as Float32Array };
  }

  async predict(states: Float32Array, n: number): Promise<Float32Array> {
    const d = this.#dims[0]!;
    const out = await this.#predict.run({
      state: new ort.Tensor('float32', states.subarray(0, n * d), [n, d]),
      ...this.#perTensor('p', this.#adam.params),
    });
    return out.q_values!.data as Float32Array;
  }

  syncTarget(tau: number): void {
    const p = this.#adam.params;
    if (tau >= 1) {
      this.#target = p.slice();
      return;
    }
    const t = this.#target;
    const next = new Float32Array(p.length);
    for (let k = 0; k < p.length; k++) next[k] = tau * p[k]! + (1 - tau) * t[k]!;
    this.#target = next;
  }

  getParams(): QNetParams {
    return {
      dims: [...this.#dims],
      dueling: false,
      tensors: this.#tensors().map((t) => t.slice()),
    };
  }

  setParams(params: QNetParams): void {
    this.#load(params);
    this.#target = this.#adam.params.slice();
    this.#adam.reset();
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
