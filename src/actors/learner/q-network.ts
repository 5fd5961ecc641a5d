// The Q-network's parameters as plain Float32Arrays — the form every engine, the checkpoint and
// the ONNX export share. Layout: input → hidden… → actions, ReLU between; weights stored [in, out].
// Dueling adds a value head: Q = V + A − mean(A), A from the last layer, V from (Wv, bv).

export interface QNetParams {
  /** [input, hidden…, actions] */
  readonly dims: readonly number[];
  readonly dueling: boolean;
  /** W0, b0, W1, b1, … (last pair = advantage/Q head), then Wv, bv when dueling. */
  readonly tensors: readonly Float32Array[];
}

/** Mulberry32: small seeded PRNG so a seed reproduces initial weights and exploration. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tensorShapes(dims: readonly number[], dueling: boolean): number[][] {
  const shapes: number[][] = [];
  for (let i = 0; i + 1 < dims.length; i++) shapes.push([dims[i]!, dims[i + 1]!], [dims[i + 1]!]);
  if (dueling) shapes.push([dims.at(-2)!, 1], [1]);
  return shapes;
}

/** He-uniform weights (ReLU layers), zero biases. */
export function initParams(dims: readonly number[], dueling: boolean, seed: number): QNetParams {
  const rand = seededRandom(seed);
  const tensors = tensorShapes(dims, dueling).map((shape) => {
    const t = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 2) {
      const limit = Math.sqrt(6 / shape[0]!);
      for (let i = 0; i < t.length; i++) t[i] = (rand() * 2 - 1) * limit;
    }
    return t;
  });
  return { dims: [...dims], dueling, tensors };
}

export function cloneParams(p: QNetParams): QNetParams {
  return { dims: [...p.dims], dueling: p.dueling, tensors: p.tensors.map((t) => t.slice()) };
}

export function paramsFinite(p: QNetParams): boolean {
  return p.tensors.every((t) => t.every(Number.isFinite));
}

/** Plain forward pass (n rows); small and slow — for checks, not for training or serving. */
export function forward(p: QNetParams, states: Float32Array, n: number): Float32Array {
  const layers = p.dims.length - 1;
  let x = states;
  let width = p.dims[0]!;
  let lastHidden = x;
  for (let l = 0; l < layers; l++) {
    const W = p.tensors[2 * l]!;
    const b = p.tensors[2 * l + 1]!;
    const out = p.dims[l + 1]!;
    const y = new Float32Array(n * out);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < out; j++) {
        let s = b[j]!;
        for (let k = 0; k < width; k++) s += x[r * width + k]! * W[k * out + j]!;
        y[r * out + j] = l < layers - 1 && s < 0 ? 0 : s;
      }
    }
    if (l === layers - 1) lastHidden = x;
    x = y;
    width = out;
  }
  if (!p.dueling) return x;
  const Wv = p.tensors[2 * layers]!;
  const bv = p.tensors[2 * layers + 1]!;
  const hidden = p.dims.at(-2)!;
  const actions = p.dims.at(-1)!;
  for (let r = 0; r < n; r++) {
    let v = bv[0]!;
    for (let k = 0; k < hidden; k++) v += lastHidden[r * hidden + k]! * Wv[k]!;
    let mean = 0;
    for (let a = 0; a < actions; a++) mean += x[r * actions + a]!;
    mean /= actions;
    for (let a = 0; a < actions; a++) x[r * actions + a] = v + x[r * actions + a]! - mean;
  }
  return x;
}
