// A stored pattern's confidence (issue 6): the policy's confidence at the decision, moved by the
// agreement of later outcomes on similar patterns. When a confirmed pattern is stored, the earlier
// patterns near it (in its nearby inverted-file cells, within RADIUS, the NEIGHBOURS nearest) count one
// agreement if they carry the same attack type and one disagreement otherwise. Confidence is then
//
//   (PRIOR × policy confidence + agreements) / (PRIOR + agreements + disagreements)
//
// — the policy's view weighs as PRIOR observations; each later confirmed neighbour as one. A
// pattern nobody has come near keeps the policy's confidence.

import type pg from 'pg';

export const PRIOR = 2;
/** Euclidean distance (features in [0, 1]) within which a later pattern counts as similar. */
export const RADIUS = 0.5;
export const NEIGHBOURS = 10;

/** Updates the confidence of earlier patterns near the given new ones; returns patterns moved. */
export async function corroborate(
  db: pg.Pool | pg.PoolClient,
  /** Cell ids below this (db/ivf.ts staleBelow) were filed under older centroids: searched too. */
  staleBelow: number,
  newPatternIds: readonly string[],
  /** Per new pattern, the cells to look in (db/ivf.ts nearbyCells); null before cells exist. */
  cells: readonly (readonly number[] | null)[],
): Promise<number> {
  // Two statements, so each is planned with its index: by cell (filed), or exact (no cells yet).
  const filed = newPatternIds.filter((_, i) => cells[i]);
  const unfiled = newPatternIds.filter((_, i) => !cells[i]);
  let moved = 0;
  if (filed.length > 0)
    moved += await run(
      db,
      'FROM unnest($1::text[], $5::text[]) AS n(id, cells) JOIN attack_patterns p ON p.pattern_id = n.id',
      '',
      '(q.cell = ANY(n.cells::int[]) OR q.cell IS NULL OR q.cell < $6)',
      [filed, cells.filter(Boolean).map((c) => `{${c!.join(',')}}`), staleBelow],
    );
  if (unfiled.length > 0)
    moved += await run(
      db,
      'FROM attack_patterns p',
      'WHERE p.pattern_id = ANY($1::text[])',
      'true',
      [unfiled],
    );
  return moved;
}

async function run(
  db: pg.Pool | pg.PoolClient,
  from: string,
  where: string,
  near: string,
  params: unknown[],
): Promise<number> {
  const [ids, ...rest] = params;
  const result = await db.query(
    `WITH nb AS (
       SELECT q.pattern_id AS id, (q.attack_type = p.attack_type) AS agree
         ${from}
         CROSS JOIN LATERAL (
           SELECT q.pattern_id, q.attack_type FROM attack_patterns q
            WHERE ${near} AND q.pattern_id <> p.pattern_id
              AND q.created_at <= p.created_at AND (q.features <-> p.features) <= $2
            ORDER BY q.features <-> p.features LIMIT $3
         ) q
         ${where}
     ), agg AS (
       SELECT id, count(*) FILTER (WHERE agree) AS a, count(*) FILTER (WHERE NOT agree) AS d
         FROM nb GROUP BY id
     )
     UPDATE attack_patterns t
        SET policy_confidence = coalesce(t.policy_confidence, t.confidence),
            agreements = t.agreements + agg.a,
            disagreements = t.disagreements + agg.d,
            confidence = (coalesce(t.policy_confidence, t.confidence) * $4 + t.agreements + agg.a)
                       / ($4 + t.agreements + agg.a + t.disagreements + agg.d)
       FROM agg WHERE t.pattern_id = agg.id`,
    [ids, RADIUS, NEIGHBOURS, PRIOR, ...rest],
  );
  return result.rowCount ?? 0;
}
