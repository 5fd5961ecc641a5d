// Queries for detection systems (requirements 6.4, 6.5; properties 27, 28): learned patterns by
// attack type, by time range, and the k nearest to a feature vector (cube GiST index), each with
// its confidence score. Parameterised SQL only.

import type pg from 'pg';
import { candidatesFor, sketch } from './sketch.ts';

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

const COLUMNS = `pattern_id AS "patternId", features::text AS features, action, reward,
  attack_type AS "attackType", confidence, created_at AS "createdAt", model_version AS "modelVersion",
  episode_id AS "episodeId", stage`;

/** cube's text form "(0.1, 0.2, …)" → numbers (cheaper than unpacking it in SQL per row). */
const parseCube = (text: string): number[] => text.slice(1, -1).split(',').map(Number);
const withFeatures = <R extends { features: unknown }>(r: R): R & { features: number[] } => ({
  ...r,
  features: parseCube(r.features as string),
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
 * The k nearest patterns: candidates by the indexed 8-dim sketch (sketch.ts), ranked by the exact
 * distance on the full features. Approximate: a true neighbour whose sketch falls outside the
 * candidate set is missed (recall is measured in bench/db.ts).
 */
export async function nearest(
  db: pg.Pool,
  features: readonly number[],
  k = 10,
): Promise<PatternRow[]> {
  const { rows } = await db.query<PatternRow & { distance: number }>(
    `SELECT * FROM (
       SELECT ${COLUMNS}, features <-> cube($1::float8[]) AS distance
         FROM (SELECT * FROM attack_patterns ORDER BY sketch <-> cube($2::float8[]) LIMIT $4) candidates
     ) ranked ORDER BY distance LIMIT $3`,
    [features, sketch(features), k, candidatesFor(k)],
  );
  return rows.map((r) => ({ ...withFeatures(r), score: r.confidence / (1 + r.distance) }));
}
