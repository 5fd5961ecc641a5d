// History retention: `warden db prune --older-than <age>` deletes finished episodes that ended
// before the cutoff, with their trajectories, and the cluster's shared experiences older than
// the cutoff that every consumer has already read. Learned attack patterns and the model registry
// are kept: they are what other detection systems query.
//
// Warden itself never deletes (its role needs no DELETE, migrations.ts); this runs as an operator
// task with a role that may. Deletes go in batches of episodes, each its own transaction, so
// Warden keeps writing meanwhile and an interrupted prune has removed whole episodes only.

import type pg from 'pg';
import { inTransaction } from './transaction.ts';

export interface PruneOptions {
  /** Episodes that ended before this time (ms since the epoch) go. */
  readonly before: number;
  /** Episodes per transaction. */
  readonly batchEpisodes?: number;
  /** Count what would go, delete nothing. */
  readonly dryRun?: boolean;
}

export interface PruneResult {
  readonly episodes: number;
  readonly trajectorySteps: number;
  readonly experiences: number;
  readonly seconds: number;
}

const count = (r: pg.QueryResult<{ n: string }>) => Number(r.rows[0]!.n);

export async function pruneHistory(pool: pg.Pool, options: PruneOptions): Promise<PruneResult> {
  const started = performance.now();
  const cutoff = new Date(options.before);
  const batch = options.batchEpisodes ?? 5_000;
  // Only experiences every consumer has read (at or below the lowest cursor); none without one.
  const readByAll = `COALESCE((SELECT min(last_id) FROM consumer_cursors), 0)`;
  if (options.dryRun) {
    const [episodes, steps, experiences] = await Promise.all([
      pool.query<{ n: string }>('SELECT count(*) AS n FROM episodes WHERE ended_at < $1', [cutoff]),
      pool.query<{ n: string }>(
        `SELECT coalesce(sum(cardinality(t.steps)), 0) AS n
           FROM trajectory_stages t JOIN episodes e USING (episode_id)
          WHERE e.ended_at < $1`,
        [cutoff],
      ),
      pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM experiences WHERE id <= ${readByAll} AND created_at < $1`,
        [cutoff],
      ),
    ]);
    return {
      episodes: count(episodes),
      trajectorySteps: count(steps),
      experiences: count(experiences),
      seconds: (performance.now() - started) / 1000,
    };
  }
  let episodes = 0;
  let trajectorySteps = 0;
  for (;;) {
    const removed = await inTransaction(pool, async (client) => {
      // SKIP LOCKED: an episode Warden is rewriting right now (a journal replay) waits for the next run.
      const ids = await client.query<{ episode_id: string }>(
        `SELECT episode_id FROM episodes WHERE ended_at < $1
          ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [cutoff, batch],
      );
      const list = ids.rows.map((r) => r.episode_id);
      if (list.length === 0) return 0;
      const steps = await client.query<{ n: string }>(
        `WITH gone AS (DELETE FROM trajectory_stages WHERE episode_id = ANY($1) RETURNING steps)
         SELECT coalesce(sum(cardinality(steps)), 0) AS n FROM gone`,
        [list],
      );
      const eps = await client.query('DELETE FROM episodes WHERE episode_id = ANY($1)', [list]);
      trajectorySteps += count(steps);
      return eps.rowCount ?? 0;
    });
    episodes += removed;
    if (removed < batch) break;
  }
  let experiences = 0;
  for (;;) {
    const r = await pool.query(
      `DELETE FROM experiences WHERE id IN (
         SELECT id FROM experiences WHERE id <= ${readByAll} AND created_at < $1
          ORDER BY id LIMIT $2)`,
      [cutoff, batch * 20],
    );
    experiences += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batch * 20) break;
  }
  return { episodes, trajectorySteps, experiences, seconds: (performance.now() - started) / 1000 };
}

/** "30d", "12h", "90m", "45s" → milliseconds. */
export function parseAge(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$/.exec(text);
  if (!m) throw new Error(`'${text}' is not an age: write a number and a unit, e.g. 30d, 12h, 90m`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 }[m[2] as 'd' | 'h' | 'm' | 's'];
  const ms = Number(m[1]) * unit;
  // Beyond this the cutoff falls outside PostgreSQL's timestamps ("timestamp out of range").
  if (ms > MAX_AGE_DAYS * 86_400_000)
    throw new Error(`'${text}' is older than any history: at most ${MAX_AGE_DAYS}d`);
  return ms;
}

/** The oldest age `--older-than` takes: a century. */
export const MAX_AGE_DAYS = 36_500;
