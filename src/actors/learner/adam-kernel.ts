// Adam for the ONNX Runtime engine, as one WebAssembly SIMD pass over the flat parameter vector
// (adam.wat). ONNX Runtime's inference build has no optimizer op, so inside the training graph
// Adam was 14 elementwise passes over the vector plus three vector outputs copied back each
// step: 250 µs of a 1.1 ms update at batch 64. This kernel takes 52 µs. The weights and the two
// moments live in the kernel's memory; the engine feeds ORT views of the weights, so nothing is
// copied but the gradient (6 µs).

import { readFileSync } from 'node:fs';

const MODULE = new WebAssembly.Module(readFileSync(new URL('./adam.wasm', import.meta.url)));
const PAGE = 65_536;

type AdamFn = (
  p: number,
  m: number,
  v: number,
  g: number,
  n: number,
  beta1: number,
  beta2: number,
  s1: number,
  s2: number,
  k1: number,
  k2: number,
) => void;

export interface AdamConstants {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

export class AdamKernel {
  /** Weights, first and second moments and the gradient, `total` floats each. */
  readonly params: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly grad: Float32Array;
  readonly #adam: AdamFn;
  readonly #stride: number;
  readonly #lanes: number;
  readonly #constants: AdamConstants;

  constructor(total: number, constants: AdamConstants) {
    const instance = new WebAssembly.Instance(MODULE);
    const memory = instance.exports.memory as WebAssembly.Memory;
    this.#adam = instance.exports.adam as AdamFn;
    this.#constants = constants;
    // Four arrays, each padded to whole SIMD lanes (16 bytes); the padding stays zero.
    this.#lanes = Math.ceil(total / 4) * 4;
    this.#stride = this.#lanes * 4;
    const pages = Math.ceil((4 * this.#stride) / PAGE) - memory.buffer.byteLength / PAGE;
    if (pages > 0) memory.grow(pages);
    const at = (i: number) => new Float32Array(memory.buffer, i * this.#stride, total);
    this.params = at(0);
    this.m = at(1);
    this.v = at(2);
    this.grad = at(3);
  }

  /**
   * Step t (from 1) of Adam at learning rate lr on `grad` multiplied by `scale` (the clipping
   * factor), as TensorFlow.js computes it: p −= lr·m̂ / (√v̂ + ε), m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ).
   */
  apply(t: number, lr: number, scale: number): void {
    const { beta1, beta2, epsilon } = this.#constants;
    const rootC2 = Math.sqrt(1 / (1 - beta2 ** t));
    const c1 = 1 / (1 - beta1 ** t);
    const s = this.#stride;
    this.#adam(
      0,
      s,
      2 * s,
      3 * s,
      this.#lanes,
      beta1,
      beta2,
      (1 - beta1) * scale,
      (1 - beta2) * scale * scale,
      (lr * c1) / rootC2,
      epsilon / rootC2,
    );
  }

  /** Zeroes both moments (a fresh optimizer over the current weights). */
  reset(): void {
    this.m.fill(0);
    this.v.fill(0);
  }
}
