// The inverted file's state in PostgreSQL (db/ivf.ts): centroids trained once the store holds
// enough patterns and retrained by maintenance as it grows, every pattern's cell, and the lookup a
// query needs. Until training, queries rank every pattern exactly (small stores: exact is cheap
// and recall is 100%).

import type pg from 'pg';
import { cubeBytes, parseCube } from './cube.ts';
import { assignCells, CELLS, type Centroids, COARSE, staleBelow, trainCentroids } from './ivf.ts';
import { ortNearest } from './ivf-assign.ts';

/** Patterns needed before cells are trained (and how many are sampled to train them). */
export const TRAIN_AT = 20_000;
const SAMPLE = 32_000;
/** Retraining samples: 16 per cell, so cells hold similar shares of the store. */
const RETRAIN_SAMPLE = 16 * CELLS;
/** `reindex` retrains once the store has grown this many times over since the last training. */
export const RETRAIN_GROWTH = 2;

interface Cached {
  /** When the version was last checked. */
  at: number;
  /** Generation and when cells were counted: either changing means read them again. */
  version: string;
  value: Centroids | undefined;
}
const cache = new WeakMap<object, Cached>();

interface Row {
  dim: number;
  generation: number;
  coarse: number[];
  fine: number[];
  sizes: number[] | null;
  version: string;
}

function fromRow(r: Row): Centroids | undefined {
  // Centroids of another layout (COARSE × FINE changed) are not used: the store is searched
  // exactly until `warden patterns reindex` retrains.
  if (r.coarse.length !== COARSE * r.dim || r.fine.length !== CELLS * r.dim) return undefined;
  return {
    dim: r.dim,
    generation: r.generation,
    coarse: Float32Array.from(r.coarse),
    fine: Float32Array.from(r.fine),
    ...(r.sizes?.length === CELLS ? { sizes: Int32Array.from(r.sizes) } : {}),
  };
}

const VERSION = `generation || '/' || coalesce(counted_at::text, '') AS version`;

/**
 * The stored centroids, cached per pool; every `maxAgeMs` a one-row check sees whether another
 * process retrained (then they are read again).
 */
export async function loadCentroids(
  db: pg.Pool | pg.PoolClient,
  maxAgeMs = 5_000,
): Promise<Centroids | undefined> {
  const hit = cache.get(db);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.value;
  if (hit?.value) {
    const { rows } = await db.query<{ version: string }>(
      `SELECT ${VERSION} FROM ivf_centroids WHERE id = 1`,
    );
    if (rows[0]?.version === hit.version) {
      hit.at = Date.now();
      return hit.value;
    }
  }
  const { rows } = await db.query<Row>(
    `SELECT dim, generation, coarse, fine, sizes, ${VERSION} FROM ivf_centroids WHERE id = 1`,
  );
  const value = rows[0] ? fromRow(rows[0]) : undefined;
  cache.set(db, { at: Date.now(), version: rows[0]?.version ?? '', value });
  return value;
}

/** Counts the rows of every current cell and stores the counts (queries budget by them). */
export async function countCells(db: pg.Pool, centroids: Centroids): Promise<void> {
  const base = staleBelow(centroids);
  const { rows } = await db.query<{ i: number; n: number }>(
    `SELECT cell - $1 AS i, count(*)::int AS n FROM attack_patterns
      WHERE cell >= $1 AND cell < $2 GROUP BY cell`,
    [base, base + CELLS],
  );
  const sizes = new Int32Array(CELLS);
  for (const r of rows) sizes[r.i] = r.n;
  await db.query(
    'UPDATE ivf_centroids SET sizes = $1, counted_at = clock_timestamp() WHERE id = 1 AND generation = $2',
    [Array.from(sizes), centroids.generation],
  );
  cache.delete(db); // read again, with the counts
}

/** Cells (stored ids) for rows about to be inserted (null before training, or another dimension). */
export async function cellsFor(
  c: Centroids | undefined,
  features: readonly (readonly number[])[],
): Promise<(number | null)[]> {
  return c ? assignCells(c, features, ortNearest) : features.map(() => null);
}

async function sample(db: pg.Pool, n: number, size: number): Promise<number[][]> {
  const { rows } = await db.query<{ f: Buffer }>(
    `SELECT ${cubeBytes('features')} AS f FROM attack_patterns TABLESAMPLE SYSTEM ($1) LIMIT $2`,
    [Math.min(100, (200 * size) / n), size],
  );
  const samples = rows.map((r) => parseCube(r.f));
  const dim = samples[0]?.length ?? 0;
  return samples.filter((s) => s.length === dim);
}

async function storedCount(db: pg.Pool): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM attack_patterns');
  return Number(rows[0]!.n);
}

/**
 * Trains cells once the store holds TRAIN_AT patterns of one dimension, then files every
 * pattern stored before. Safe to call often: a no-op once trained or while too small.
 */
export async function trainCellsIfDue(db: pg.Pool, minRows = TRAIN_AT): Promise<boolean> {
  if (await loadCentroids(db, 0)) return false;
  // Centroids of an older layout: forgotten, and every pattern refiled after training.
  const stale = await db.query('DELETE FROM ivf_centroids WHERE id = 1');
  if ((stale.rowCount ?? 0) > 0)
    await db.query('UPDATE attack_patterns SET cell = NULL WHERE cell IS NOT NULL');
  const n = await storedCount(db);
  if (n < minRows) return false;
  const centroids = await trainCentroids(await sample(db, n, SAMPLE), ortNearest);
  const inserted = await db.query(
    `INSERT INTO ivf_centroids (id, dim, generation, coarse, fine, trained_on) VALUES (1, $1, 0, $2, $3, $4)
     ON CONFLICT (id) DO NOTHING`,
    [centroids.dim, Array.from(centroids.coarse), Array.from(centroids.fine), n],
  );
  if (inserted.rowCount === 0) return false; // another writer trained first
  await assignMissingCells(db, centroids);
  await countCells(db, centroids);
  await db.query('ANALYZE attack_patterns'); // the planner must see that cells are now selective
  return true;
}

/**
 * Files patterns without a current cell: stored before training, or filed under an older
 * generation (by a writer that had not yet seen a retraining). Returns the rows filed.
 */
export async function assignMissingCells(db: pg.Pool, centroids: Centroids): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await db.query<{ id: string; f: Buffer }>(
      `SELECT pattern_id AS id, ${cubeBytes('features')} AS f FROM attack_patterns
        WHERE cell IS NULL OR (cell >= 0 AND cell < $1) LIMIT 5000`,
      [staleBelow(centroids)],
    );
    if (rows.length === 0) return total;
    const cells = (
      await cellsFor(
        centroids,
        rows.map((r) => parseCube(r.f)),
      )
    ).map((c) => c ?? -1); // another dimension: cell -1, searched exactly
    await db.query(
      `UPDATE attack_patterns p SET cell = u.cell
         FROM unnest($1::text[], $2::int[]) AS u(id, cell) WHERE p.pattern_id = u.id`,
      [rows.map((r) => r.id), cells],
    );
    total += rows.length;
  }
}

/**
 * The writer's upkeep after a batch: trains cells when due, else files any pattern left without
 * a current cell (one indexed probe when there is none).
 */
export async function maintainCells(db: pg.Pool): Promise<'trained' | 'filed' | 'none'> {
  const centroids = await loadCentroids(db);
  if (!centroids) return (await trainCellsIfDue(db)) ? 'trained' : 'none';
  const { rows } = await db.query(
    'SELECT 1 FROM attack_patterns WHERE cell IS NULL OR (cell >= 0 AND cell < $1) LIMIT 1',
    [staleBelow(centroids)],
  );
  if (rows.length === 0) return 'none';
  return (await assignMissingCells(db, centroids)) > 0 ? 'filed' : 'none';
}

/**
 * New centroids (the next generation) from a fresh sample of the whole store. Every pattern is
 * then stale until refiled; queries rank stale rows exactly meanwhile, so answers stay right.
 */
async function retrain(db: pg.Pool, n: number): Promise<Centroids> {
  const samples = await sample(db, n, RETRAIN_SAMPLE);
  const { rows } = await db.query<{ generation: number }>(
    'SELECT generation FROM ivf_centroids WHERE id = 1',
  );
  const trained = await trainCentroids(samples, ortNearest, (rows[0]?.generation ?? -1) + 1);
  const { rows: stored } = await db.query<{ generation: number }>(
    `INSERT INTO ivf_centroids (id, dim, generation, coarse, fine, trained_on) VALUES (1, $1, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET dim = $1, generation = ivf_centroids.generation + 1,
       coarse = $3, fine = $4, trained_on = $5, trained_at = now(), sizes = NULL, counted_at = NULL
     RETURNING generation`,
    [trained.dim, trained.generation, Array.from(trained.coarse), Array.from(trained.fine), n],
  );
  cache.delete(db);
  return { ...trained, generation: stored[0]!.generation };
}

/**
 * Maintenance (`warden patterns reindex`): trains cells if the store has none yet (at any size
 * of at least 32 patterns) or retrains them once the store has grown RETRAIN_GROWTH times since
 * (or when `retrain` is asked), files every pattern without a current cell, and stores each
 * cell's rows together (CLUSTER) so a query reads a few contiguous pages per cell. CLUSTER locks
 * the table while it runs.
 */
export async function reindexPatterns(
  db: pg.Pool,
  opts: { retrain?: boolean } = {},
): Promise<{ trained: boolean; generation: number | null; filed: number; seconds: number }> {
  const t0 = performance.now();
  let trained = await trainCellsIfDue(db, 32);
  let centroids = await loadCentroids(db, 0);
  if (centroids && !trained) {
    const n = await storedCount(db);
    const { rows } = await db.query<{ on: string }>(
      'SELECT trained_on AS on FROM ivf_centroids WHERE id = 1',
    );
    if (opts.retrain || n >= RETRAIN_GROWTH * Number(rows[0]!.on)) {
      centroids = await retrain(db, n);
      trained = true;
    }
  }
  const filed = centroids ? await assignMissingCells(db, centroids) : 0;
  if (centroids) {
    await countCells(db, centroids);
    await db.query('CLUSTER attack_patterns USING attack_patterns_cell');
  }
  await db.query('ANALYZE attack_patterns');
  return {
    trained,
    generation: centroids?.generation ?? null,
    filed,
    seconds: (performance.now() - t0) / 1000,
  };
}
