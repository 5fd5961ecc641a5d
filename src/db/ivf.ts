// Nearest-neighbour search over stored patterns as an inverted file (IVF) in plain PostgreSQL:
// every pattern carries the cell of its nearest centroid (a btree column); a query ranks the
// centroids itself, reads only the rows of the few nearest cells, and orders those by the exact
// distance on the full features. pgvector is not in embedded or Debian PostgreSQL; this needs
// nothing but a column and an index.
//
// Cells come from a two-level k-means (COARSE = 128 coarse centroids, FINE = 64 fine centroids
// within each: 8,192 cells): assigning a row costs COARSE + FINE distances instead of
// COARSE × FINE; a query compares against the fine centroids of its nearest coarse ones.
//
// Generations: every retraining (db/ivf-store.ts reindex) numbers its cells anew — stored cell id
// = generation × CELLS + index — so a row filed under older centroids is recognisably stale
// (id below generation × CELLS): queries rank stale rows exactly until they are refiled, and no
// row is ever looked for in the wrong cell.

export const COARSE = 128;
export const FINE = 64;
export const CELLS = COARSE * FINE;

export interface Centroids {
  readonly dim: number;
  /** Retraining count: this set's cell ids are generation × CELLS + index. */
  readonly generation: number;
  /** COARSE × dim */
  readonly coarse: Float32Array;
  /** CELLS × dim; index = coarseIndex × FINE + fineIndex */
  readonly fine: Float32Array;
  /** Rows per cell when last counted (training or reindex); absent before the first count. */
  readonly sizes?: Int32Array;
}

/** Rows assumed per cell when cells have not been counted yet. */
const UNCOUNTED_CELL_ROWS = 150;

/**
 * For each of `n` points (rows of `points`, n × dim), the index of its nearest of `k` centroids
 * (rows of `centroids`). Batched: db/ivf-assign.ts runs it as one ONNX Runtime GEMM.
 */
export type NearestFn = (
  points: Float32Array,
  n: number,
  centroids: Float32Array,
  k: number,
  dim: number,
) => Promise<Int32Array>;

/** Stored cell id of a cell index under these centroids. */
export const cellId = (c: Centroids, index: number): number => c.generation * CELLS + index;

/** Stored ids below this (and ≥ 0) were filed under older centroids. */
export const staleBelow = (c: Centroids): number => c.generation * CELLS;

function dist2(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, dim: number) {
  let s = 0;
  for (let i = 0; i < dim; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    s += d * d;
  }
  return s;
}

/** Lloyd's k-means on rows of `data` (n × dim); empty clusters take a random point. */
async function kmeans(
  data: Float32Array,
  n: number,
  dim: number,
  k: number,
  rand: () => number,
  nearest: NearestFn,
  iterations: number,
) {
  const c = new Float32Array(k * dim);
  for (let j = 0; j < k; j++) {
    const i = Math.floor(rand() * n);
    c.set(data.subarray(i * dim, i * dim + dim), j * dim);
  }
  let assign: Int32Array = new Int32Array(n);
  for (let it = 0; it < iterations; it++) {
    assign = await nearest(data, n, c, k, dim);
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
  return { centroids: c, assign: await nearest(data, n, c, k, dim) };
}

/** Trains the two-level centroids on a sample of stored feature vectors. */
export async function trainCentroids(
  samples: readonly (readonly number[])[],
  nearest: NearestFn,
  generation = 0,
  seed = 1,
): Promise<Centroids> {
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
  const top = await kmeans(data, n, dim, COARSE, rand, nearest, 8);
  const fine = new Float32Array(CELLS * dim);
  for (let c = 0; c < COARSE; c++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (top.assign[i] === c) members.push(i);
    const sub = new Float32Array(Math.max(members.length, 1) * dim);
    for (const [m, i] of members.entries()) sub.set(data.subarray(i * dim, i * dim + dim), m * dim);
    if (members.length === 0) sub.set(top.centroids.subarray(c * dim, c * dim + dim));
    const f = await kmeans(sub, Math.max(members.length, 1), dim, FINE, rand, nearest, 6);
    fine.set(f.centroids, c * FINE * dim);
  }
  return { dim, generation, coarse: top.centroids, fine };
}

/**
 * Stored cell ids of vectors about to be stored (null for another dimension): nearest coarse
 * centroid, then nearest fine centroid within it — both as batched `nearest` calls.
 */
export async function assignCells(
  c: Centroids,
  vectors: readonly (readonly number[])[],
  nearest: NearestFn,
): Promise<(number | null)[]> {
  const out: (number | null)[] = vectors.map(() => null);
  const rows = vectors.flatMap((v, i) => (v.length === c.dim ? [i] : []));
  if (rows.length === 0) return out;
  const points = new Float32Array(rows.length * c.dim);
  for (const [j, i] of rows.entries()) points.set(vectors[i]!, j * c.dim);
  const coarse = await nearest(points, rows.length, c.coarse, COARSE, c.dim);
  const groups = new Map<number, number[]>();
  for (let j = 0; j < rows.length; j++) {
    const k = coarse[j]!;
    const group = groups.get(k);
    if (group) group.push(j);
    else groups.set(k, [j]);
  }
  for (const [k, members] of groups) {
    const sub = new Float32Array(members.length * c.dim);
    for (const [m, j] of members.entries())
      sub.set(points.subarray(j * c.dim, (j + 1) * c.dim), m * c.dim);
    const fineCentroids = c.fine.subarray(k * FINE * c.dim, (k + 1) * FINE * c.dim);
    const fine = await nearest(sub, members.length, fineCentroids, FINE, c.dim);
    for (const [m, j] of members.entries()) out[rows[j]!] = cellId(c, k * FINE + fine[m]!);
  }
  return out;
}

/** Indexes of the `take` smallest of d[0..n), nearest first (insertion into a short sorted list). */
function smallest(d: Float64Array, n: number, take: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < n; i++) {
    if (idx.length === take && d[i]! >= d[idx[take - 1]!]!) continue;
    let at = idx.length === take ? take - 1 : idx.length;
    while (at > 0 && d[idx[at - 1]!]! > d[i]!) {
      idx[at] = idx[at - 1]!;
      at--;
    }
    idx[at] = i;
  }
  return idx;
}

/** Cells whose centroids are nearest to `x` among the fine centroids of the `coarseCount` nearest coarse ones. */
function rankCells(c: Centroids, x: readonly number[], coarseCount: number, take: number) {
  const q = Float64Array.from(x);
  const dc = new Float64Array(COARSE);
  for (let k = 0; k < COARSE; k++) dc[k] = dist2(q, 0, c.coarse, k * c.dim, c.dim);
  const coarse = smallest(dc, COARSE, coarseCount);
  const df = new Float64Array(coarse.length * FINE);
  for (const [j, k] of coarse.entries())
    for (let f = 0; f < FINE; f++)
      df[j * FINE + f] = dist2(q, 0, c.fine, (k * FINE + f) * c.dim, c.dim);
  return smallest(df, df.length, Math.min(take, df.length)).map((i) =>
    cellId(c, coarse[Math.floor(i / FINE)]! * FINE + (i % FINE)),
  );
}

/** The `probes` cells (stored ids) a query reads: nearest coarse first, enough to hold them 4×. */
export function probeCells(c: Centroids, x: readonly number[], probes: number): number[] {
  return rankCells(c, x, Math.min(COARSE, Math.max(8, Math.ceil((probes * 4) / FINE))), probes);
}

/** Cells near a stored vector, cheaply (corroboration): within its two nearest coarse centroids. */
export function nearbyCells(c: Centroids, x: readonly number[], probes: number): number[] {
  return rankCells(c, x, 2, probes);
}

/** Rows of a cell (stored id) when last counted, or the assumed size before the first count. */
const cellRows = (c: Centroids, id: number): number =>
  c.sizes ? c.sizes[id - staleBelow(c)]! : UNCOUNTED_CELL_ROWS;

/**
 * The cells (stored ids) a query reads, nearest first, until they hold about `rows` rows. Cells
 * are uneven — k-means gives dense regions cells small in volume but not in rows — so a budget in
 * rows, not in cells, is what bounds a query's time: a cell that would take the total past 1.5 ×
 * `rows` is passed over (unless nothing was taken yet), and the next nearest considered.
 */
export function queryCells(c: Centroids, x: readonly number[], rows: number): number[] {
  const size = (id: number) => cellRows(c, id);
  for (let ranked = 16; ; ranked = Math.min(CELLS, ranked * 4)) {
    const out: number[] = [];
    let covered = 0;
    for (const id of probeCells(c, x, ranked)) {
      if (covered >= rows) return out;
      if (out.length > 0 && covered + size(id) > 1.5 * rows) continue;
      out.push(id);
      covered += size(id);
    }
    if (ranked >= CELLS) return out;
  }
}

/**
 * The cells split in two halves of about equal rows (largest first, each to the lighter half), so
 * two server processes can rank them at once. A single cell, or too few rows to be worth a second
 * query, stays whole.
 */
export function splitCells(c: Centroids, cells: readonly number[]): [number[], number[]] {
  const size = (id: number) => cellRows(c, id);
  const total = cells.reduce((s, id) => s + size(id), 0);
  if (cells.length < 2 || total < MIN_SPLIT_ROWS) return [[...cells], []];
  const halves: [number[], number[]] = [[], []];
  const rows = [0, 0];
  for (const id of [...cells].sort((x, y) => size(y) - size(x))) {
    const h = rows[0]! <= rows[1]! ? 0 : 1;
    halves[h].push(id);
    rows[h]! += size(id);
  }
  return halves;
}

/** Below this many candidate rows one query is kept (a judgement: the split was measured at 1,000–2,400). */
const MIN_SPLIT_ROWS = 400;
