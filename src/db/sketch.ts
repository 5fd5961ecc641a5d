// Nearest-neighbour search over ≤ 100-dimensional features: an R-tree (cube's GiST) degenerates at
// 64 dimensions — measured 229 ms per 10-NN query at 200k rows, and 3.5× slower inserts. So the
// index holds an 8-dimensional sketch, a fixed Gaussian random projection of the features
// (Johnson–Lindenstrauss: distances are roughly kept), and a query takes the nearest candidates
// by sketch, then ranks them by the exact distance on the full features (patterns.ts, nearest).
// The projection depends only on (dimension, SKETCH_SEED): the same vector always gets the same
// sketch, in every process, so stored sketches never need recomputing.

export const SKETCH_DIM = 8;
const SKETCH_SEED = 0x5eed_c0be;

const cache = new Map<number, Float64Array>();

function projection(dim: number): Float64Array {
  let m = cache.get(dim);
  if (m) return m;
  // Mulberry32 + Box–Muller, scaled by 1/√SKETCH_DIM.
  let a = (SKETCH_SEED ^ dim) >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  m = new Float64Array(dim * SKETCH_DIM);
  for (let i = 0; i < m.length; i++) {
    const u = Math.max(rand(), 1e-12);
    m[i] = (Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand())) / Math.sqrt(SKETCH_DIM);
  }
  cache.set(dim, m);
  return m;
}

export function sketch(features: readonly number[]): number[] {
  const dim = features.length;
  const m = projection(dim);
  const out = new Array<number>(SKETCH_DIM).fill(0);
  for (let i = 0; i < dim; i++) {
    const v = features[i]!;
    if (v === 0) continue;
    for (let j = 0; j < SKETCH_DIM; j++) out[j]! += v * m[i * SKETCH_DIM + j]!;
  }
  return out.map((v) => Math.round(v * 1e6) / 1e6);
}

/** Candidates fetched by sketch before exact re-ranking: recall grows with it, so does cost. */
export const candidatesFor = (k: number) => Math.max(200, k * 20);
