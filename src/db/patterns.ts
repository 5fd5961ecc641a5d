// Queries for detection systems (requirements 6.4, 6.5; properties 27, 28): learned patterns by
// attack type, by time range, and the k nearest to a feature vector (inverted file, db/ivf.ts),
// each with its confidence score. Parameterised SQL only.

import type pg from 'pg';
import { cubeBytes, parseCube } from './cube.ts';
import { CELLS, queryCells, splitCells, staleBelow } from './ivf.ts';
import { loadCentroids } from './ivf-store.ts';

export interface PatternRow {
  readonly patternId: string;
  readonly features: number[];
  readonly action: number;
  readonly reward: number;
  readonly attackType: string;
  readonly confidence: number;
  readonly createdAt: Date;
  readonly modelVersion: string;
  readonly episodeId: string;
  readonly stage: number;
  /** kNN only: Euclidean distance to the query vector. */
  readonly distance?: number;
  /** kNN only: confidence × 1 / (1 + distance) — how much the match says about the query. */
  readonly score?: number;
}

const COLUMNS = `pattern_id AS "patternId", ${cubeBytes('features')} AS features, action, reward,
  attack_type AS "attackType", confidence, created_at AS "createdAt", model_version AS "modelVersion",
  episode_id AS "episodeId", stage`;

const withFeatures = <R extends { features: unknown }>(r: R): R & { features: number[] } => ({
  ...r,
  features: parseCube(r.features as Buffer),
});

/** Patterns of one attack type; several stored forms when the column is encrypted (one per key). */
export async function byAttackType(
  db: pg.Pool,
  attackType: string | readonly string[],
  limit = 100,
): Promise<PatternRow[]> {
  const forms = typeof attackType === 'string' ? [attackType] : attackType;
  const { rows } = await db.query<PatternRow>(
    `SELECT ${COLUMNS} FROM attack_patterns WHERE attack_type = ANY($1::text[]) ORDER BY created_at DESC LIMIT $2`,
    [forms, limit],
  );
  return rows.map(withFeatures);
}

export async function byTimeRange(
  db: pg.Pool,
  from: Date,
  to: Date,
  limit = 100,
): Promise<PatternRow[]> {
  const { rows } = await db.query<PatternRow>(
    `SELECT ${COLUMNS} FROM attack_patterns WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at DESC LIMIT $3`,
    [from, to, limit],
  );
  return rows.map(withFeatures);
}

/**
 * Rows a nearest-neighbour query ranks once the store has cells: more is slower and finds more.
 * Measured at 1M patterns by bench/db.ts (medians of 3 runs, p99 / recall@10): 1,000 rows 5.6 ms
 * / 70%, 1,500 rows 3.7 ms / 79.5%, 2,400 rows 5.7 ms / 92% (2 cores: noise moves p99 by ±1 ms).
 */
export const DEFAULT_CANDIDATES = 1_500;

/**
 * The k nearest patterns, ranked by the exact distance on the full features. Once the store has
 * trained its cells (db/ivf.ts), only the rows of the nearest cells are ranked, about
 * `candidates` of them (plus any not filed under the current cells); before that, every row.
 * Approximate past training: a true neighbour in a cell not read is missed (recall is measured
 * in bench/db.ts).
 */
export async function nearest(
  db: pg.Pool,
  features: readonly number[],
  k = 10,
  candidates = DEFAULT_CANDIDATES,
): Promise<PatternRow[]> {
  const centroids = await loadCentroids(db);
  const filed = centroids !== undefined && centroids.dim === features.length;
  // Ranked on ids and distances only, then the k winners' columns fetched (carrying every
  // candidate's whole row through the sort doubled the time: measured p50 2.9 → 1.5 ms).
  // Unfiled rows, rows of another dimension (-1) and rows filed under older centroids (below the
  // generation's first id) are ranked exactly: none is ever missed for being in the wrong cell.
  const ranked = (where: string, params: unknown[]) =>
    db.query<PatternRow & { distance: number }>(
      `SELECT ${COLUMNS}, nn.distance FROM (
         SELECT pattern_id AS id, features <-> cube($1::float8[]) AS distance FROM attack_patterns
           ${where} ORDER BY distance LIMIT $2
       ) nn JOIN attack_patterns p ON p.pattern_id = nn.id ORDER BY nn.distance`,
      [features, k, ...params],
    );
  const query = async (cells: readonly number[]) => {
    if (!filed) return (await ranked('', [])).rows;
    // The candidate rows are split over two connections (two server processes rank at once);
    // the halves' winners are merged here. On 2 cores, 1,500 rows: p50 2.4-2.75 → 1.7 ms.
    const [a, b] = splitCells(centroids, cells);
    const halves = await Promise.all([
      ranked('WHERE cell = ANY($3::int[]) OR cell IS NULL OR cell < $4', [
        a,
        staleBelow(centroids),
      ]),
      ...(b.length > 0 ? [ranked('WHERE cell = ANY($3::int[])', [b])] : []),
    ]);
    return halves
      .flatMap((h) => h.rows)
      .sort((x, y) => x.distance - y.distance)
      .slice(0, k);
  };
  let budget = candidates;
  let cells = filed ? queryCells(centroids, features, budget) : [];
  let rows = await query(cells);
  // Sparse cells (a small store, or a query far from the data): read more until k are found.
  while (filed && rows.length < k && cells.length < CELLS) {
    budget *= 4;
    cells = queryCells(centroids, features, budget);
    rows = await query(cells);
  }
  return rows.map((r) => ({ ...withFeatures(r), score: r.confidence / (1 + r.distance) }));
}
