// Experience aggregation through PostgreSQL (issue 8, requirement 7.2, property 30): inference
// hosts append transitions to `experiences`; the learner reads them in id order behind a durable
// cursor, so a restarted (or new) learner resumes exactly where the last one stopped.
//
// Ids come from a sequence, and transactions commit out of id order: a reader that trusted
// `id > cursor` alone could pass a row whose transaction commits a moment later and skip it
// forever. Writers therefore hold a shared advisory lock for their inserting transaction, and the
// reader takes the same lock exclusively for an instant to read the high-water mark: every row at
// or below it is committed, every later row gets a higher id. Rows (cursor, mark] are read, and
// the cursor moves in the same transaction.

import type pg from 'pg';
import { inTransaction } from '../db/transaction.ts';
import type { TrajectoryStep } from '../messages/trajectory.ts';

/** Advisory lock key shared by experience writers (shared) and the reader (exclusive). */
export const EXPERIENCE_LOCK = 0x5745_5850; // "WEXP"

/** One transition of a stage (TrajectoryStep) with where and by which model it was decided. */
export interface ExperienceRow extends Omit<TrajectoryStep, 'state'> {
  /** Plain arrays: rows go to PostgreSQL as one JSON document. */
  readonly state: readonly number[];
  /** Stored with the row: the learner host reads rows one by one in id order. */
  readonly nextState: readonly number[];
  readonly hostId: string;
  readonly episodeId: string;
  readonly modelVersion: string;
  /** When the decision was made (epoch ms): which model served it, and when. */
  readonly decidedAt: number;
}

/** A stored row as the feed reads it back (the learner's cursor, rehearsal). */
const ROW_COLUMNS = `id, host_id AS "hostId", episode_id AS "episodeId", stage, step,
  model_version AS "modelVersion", extract(epoch FROM decided_at) * 1000 AS "decidedAt",
  state, action, reward, next_state AS "nextState", done`;

/**
 * Inserts rows inside the caller's transaction (it must hold no other lock order). A row stored
 * before (a journal replay: the same decision time) is skipped; another run's step under a reused
 * episode id is not.
 */
export async function insertExperiences(
  client: pg.PoolClient | pg.Client,
  rows: readonly ExperienceRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  await client.query('SELECT pg_advisory_xact_lock_shared($1)', [EXPERIENCE_LOCK]);
  const result = await client.query(
    `INSERT INTO experiences (host_id, episode_id, stage, step, model_version, decided_at, state, action, reward, next_state, done)
     SELECT x."hostId", x."episodeId", x.stage, x.step, x."modelVersion", to_timestamp(x."decidedAt" / 1000.0),
            x.state, x.action, x.reward, x."nextState", x.done
       FROM jsonb_to_recordset($1::jsonb) AS x("hostId" text, "episodeId" text, stage int2, step int,
            "modelVersion" text, "decidedAt" float8, state real[], action int2, reward real, "nextState" real[], done bool)
     ON CONFLICT (host_id, episode_id, stage, step, decided_at) DO NOTHING`,
    [JSON.stringify(rows)],
  );
  return result.rowCount ?? 0;
}

export interface ConsumedRow extends ExperienceRow {
  readonly id: number;
}

/**
 * Reads up to `limit` rows after `consumer`'s cursor, hands them to `apply`, and moves the
 * cursor past them — all in one transaction: if apply throws, nothing moves.
 */
export async function consumeExperiences(
  pool: pg.Pool,
  consumer: string,
  limit: number,
  apply: (rows: readonly ConsumedRow[]) => void | Promise<void>,
): Promise<number> {
  return inTransaction(pool, async (client) => {
    await client.query(
      'INSERT INTO consumer_cursors (consumer) VALUES ($1) ON CONFLICT (consumer) DO NOTHING',
      [consumer],
    );
    const cursor = await client.query<{ last_id: string }>(
      'SELECT last_id FROM consumer_cursors WHERE consumer = $1 FOR UPDATE',
      [consumer],
    );
    const last = Number(cursor.rows[0]!.last_id);
    // The high-water mark, read while no writer is between its insert and its commit.
    const mark = await highWaterMark(pool);
    if (mark <= last) return 0;
    const { rows } = await client.query(
      `SELECT ${ROW_COLUMNS} FROM experiences WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3`,
      [last, mark, limit],
    );
    const consumed = rows.map((r) => ({ ...r, id: Number(r.id) })) as ConsumedRow[];
    if (consumed.length > 0) {
      await apply(consumed);
      await client.query(
        `UPDATE consumer_cursors SET last_id = $2, consumed = consumed + $3, updated_at = now()
          WHERE consumer = $1`,
        [consumer, consumed.at(-1)!.id, consumed.length],
      );
    }
    return consumed.length;
  });
}

/**
 * Up to `k` rows drawn uniformly at random from the history up to `maxId` (rehearsal: older
 * experiences replayed beside new ones so new data does not wipe out what was learned). Random
 * ids over [min, maxId]; gaps make the sample a little smaller, never biased.
 */
export async function sampleHistory(
  pool: pg.Pool,
  k: number,
  maxId: number,
  random: () => number = Math.random,
): Promise<ConsumedRow[]> {
  if (k <= 0 || maxId <= 0) return [];
  const { rows: bounds } = await pool.query<{ min: string | null }>(
    'SELECT min(id) AS min FROM experiences',
  );
  const min = Number(bounds[0]?.min ?? 0);
  if (min === 0 || min > maxId) return [];
  const ids = Array.from({ length: k }, () => min + Math.floor(random() * (maxId - min + 1)));
  const { rows } = await pool.query(
    `SELECT ${ROW_COLUMNS} FROM experiences WHERE id = ANY($1::bigint[])`,
    [[...new Set(ids)]],
  );
  // With replacement: an id drawn twice is rehearsed twice.
  const byId = new Map(rows.map((r) => [Number(r.id), { ...r, id: Number(r.id) } as ConsumedRow]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

async function highWaterMark(pool: pg.Pool): Promise<number> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [EXPERIENCE_LOCK]);
    const { rows } = await client.query<{ mark: string | null }>(
      'SELECT max(id) AS mark FROM experiences',
    );
    return Number(rows[0]!.mark ?? 0);
  });
}
