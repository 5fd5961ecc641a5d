// Nearest-neighbour search over stored patterns as an inverted file (IVF) in plain PostgreSQL:
// every pattern carries the cell of its nearest centroid (a btree column); a query ranks the
// centroids itself, reads only the rows of the few nearest cells, and orders those by the exact
// distance on the full features. pgvector is not in embedded or Debian PostgreSQL; this needs
// nothing but a column and an index.
//
// Cells come from a two-level k-means (COARSE = 128 coarse centroids, FINE = 64 fine centroids within each: 8,192 cells):
// assigning a row costs (COARSE + FINE) distances instead of COARSE × FINE, which keeps the writer
// fast; a query compares against all COARSE × FINE centroids (cheap for one vector).

export const COARSE = 128;
export const FINE = 64;
export const CELLS = COARSE * FINE;

export interface Centroids {
  readonly dim: number;
  /** COARSE × dim */
  readonly coarse: Float32Array;
  /** CELLS × dim; cell = coarseIndex × FINE + fineIndex */
  readonly fine: Float32Array;
}

function dist2(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, dim: number) {
  let s = 0;
  for (let i = 0; i < dim; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    s += d * d;
  }
  return s;
}

function nearestOf(
  x: ArrayLike<number>,
  xo: number,
  c: Float32Array,
  from: number,
  count: number,
  dim: number,
) {
  let best = from;
  let bestD = Number.POSITIVE_INFINITY;
  for (let k = from; k < from + count; k++) {
    const d = dist2(x, xo, c, k * dim, dim);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

/** Lloyd's k-means on rows of `data` (n × dim); empty clusters take a random point. */
function kmeans(
  data: Float32Array,
  n: number,
  dim: number,
  k: number,
  rand: () => number,
  iterations = 8,
) {
  const c = new Float32Array(k * dim);
  for (let j = 0; j < k; j++) {
    const i = Math.floor(rand() * n);
    c.set(data.subarray(i * dim, i * dim + dim), j * dim);
  }
  const assign = new Int32Array(n);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) assign[i] = nearestOf(data, i * dim, c, 0, k, dim);
    const sums = new Float64Array(k * dim);
    const counts = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      const j = assign[i]!;
      counts[j]!++;
      for (let d = 0; d < dim; d++) sums[j * dim + d]! += data[i * dim + d]!;
    }
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) {
        const i = Math.floor(rand() * n);
        c.set(data.subarray(i * dim, i * dim + dim), j * dim);
      } else for (let d = 0; d < dim; d++) c[j * dim + d] = sums[j * dim + d]! / counts[j]!;
    }
  }
  return { centroids: c, assign };
}

/** Trains the two-level centroids on a sample of stored feature vectors. */
export function trainCentroids(samples: readonly (readonly number[])[], seed = 1): Centroids {
  const n = samples.length;
  const dim = samples[0]?.length ?? 0;
  if (n < COARSE || dim === 0) throw new Error(`need at least ${COARSE} samples to train cells`);
  let s = seed >>> 0;
  const rand = () => {
    s = (s * 1_103_515_245 + 12_345) >>> 0;
    return s / 2 ** 32;
  };
  const data = new Float32Array(n * dim);
  for (const [i, v] of samples.entries()) data.set(v, i * dim);
  const top = kmeans(data, n, dim, COARSE, rand);
  const fine = new Float32Array(CELLS * dim);
  for (let c = 0; c < COARSE; c++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (top.assign[i] === c) members.push(i);
    const sub = new Float32Array(Math.max(members.length, 1) * dim);
    for (const [m, i] of members.entries()) sub.set(data.subarray(i * dim, i * dim + dim), m * dim);
    if (members.length === 0) sub.set(top.centroids.subarray(c * dim, c * dim + dim));
    const f = kmeans(sub, Math.max(members.length, 1), dim, FINE, rand, 6);
    fine.set(f.centroids, c * FINE * dim);
  }
  return { dim, coarse: top.centroids, fine };
}

/** The cell a stored vector belongs to: nearest coarse centroid, then nearest fine within it. */
export function cellOf(c: Centroids, x: readonly number[]): number {
  const coarse = nearestOf(x, 0, c.coarse, 0, COARSE, c.dim);
  return nearestOf(x, 0, c.fine, coarse * FINE, FINE, c.dim);
}

/** The `probes` cells whose centroids are nearest to a query (all CELLS compared). */
export function probeCells(c: Centroids, x: readonly number[], probes: number): number[] {
  // The nearest coarse centroids first (enough to hold `probes` cells four times over), then
  // the nearest fine centroids among theirs.
  const coarseCount = Math.min(COARSE, Math.max(8, Math.ceil((probes * 4) / FINE)));
  const coarse = Array.from({ length: COARSE }, (_, k) => ({
    k,
    d: dist2(x, 0, c.coarse, k * c.dim, c.dim),
  }))
    .sort((a, b) => a.d - b.d)
    .slice(0, coarseCount);
  const fine: { cell: number; d: number }[] = [];
  for (const { k } of coarse)
    for (let f = 0; f < FINE; f++) {
      const cell = k * FINE + f;
      fine.push({ cell, d: dist2(x, 0, c.fine, cell * c.dim, c.dim) });
    }
  return fine
    .sort((a, b) => a.d - b.d)
    .slice(0, probes)
    .map((e) => e.cell);
}

/**
 * Cells near a stored vector, cheaply (the writer's path): the two nearest coarse centroids,
 * then the `probes` nearest fine centroids among theirs.
 */
export function nearbyCells(c: Centroids, x: readonly number[], probes: number): number[] {
  const coarse = Array.from({ length: COARSE }, (_, k) => k)
    .map((k) => ({ k, d: dist2(x, 0, c.coarse, k * c.dim, c.dim) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, 2);
  return coarse
    .flatMap(({ k }) =>
      Array.from({ length: FINE }, (_, f) => k * FINE + f).map((cell) => ({
        cell,
        d: dist2(x, 0, c.fine, cell * c.dim, c.dim),
      })),
    )
    .sort((a, b) => a.d - b.d)
    .slice(0, probes)
    .map((e) => e.cell);
}
