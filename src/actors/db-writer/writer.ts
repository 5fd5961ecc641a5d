// The DB writer's logic (no threads): batches patterns and trajectories into PostgreSQL with
// idempotent keys, and when the database is unreachable appends them to the durable journal,
// replayed in order when the actor's schedule retries (backoff from 1 s up to database.retryMs;
// properties 24, 26), beside the new rows once the database answers again. Every row handed to
// write() is either in the database, in the journal, or refused with a counted, logged reason.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { insertExperiences } from '../../cluster/experiences.ts';
import {
  encodePatterns,
  encodeTrajectoryStages,
  PATTERN_COPY_COLUMNS,
  TRAJECTORY_STAGE_COPY_COLUMNS,
} from '../../db/copy-binary.ts';
import { corroborate } from '../../db/corroborate.ts';
import { float8ArrayBinary } from '../../db/cube.ts';
import { type Centroids, nearbyCells, staleBelow } from '../../db/ivf.ts';
import { cellsFor, loadCentroids, maintainCells } from '../../db/ivf-store.ts';
import { type Journal, JournalFullError, JournalWriteError } from '../../db/journal.ts';
import type { ExperienceRows } from '../../messages/experience.ts';
import type { AttackPattern } from '../../messages/pattern.ts';
import type { EpisodeTrajectory } from '../../messages/trajectory.ts';
import { WardenError } from '../../runtime/errors.ts';
import { Repeats } from '../../runtime/repeats.ts';
import { settlesWithin } from '../../runtime/within.ts';
import { type EncryptableField, FieldCipher } from '../../security/field-crypto.ts';

export type DbRecord = AttackPattern | EpisodeTrajectory | ExperienceRows;

export type WriteOutcome = 'persisted' | 'queued' | 'refused';

/**
 * Corroboration (db/corroborate.ts) runs beside the writes, at most CORROBORATE_PER_TURN new
 * patterns every CORROBORATE_EVERY_MS, so bulk loads keep their write rate; past
 * MAX_CORROBORATION_QUEUE waiting patterns the oldest are skipped and counted (`uncorroborated`).
 */
export const CORROBORATE_PER_TURN = 20;
export const CORROBORATE_EVERY_MS = 100;
export const MAX_CORROBORATION_QUEUE = 20_000;

export interface WriterLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface WriterStats {
  persisted: number;
  queued: number;
  replayed: number;
  refused: number;
  outages: number;
  batches: number;
  lastWriteMs: number;
  /** New patterns of very large batches that did not move their neighbours' confidence. */
  uncorroborated: number;
  /** Episodes stored as "<id>#<start ms>": their id was another run's (insertEpisodes). */
  renamed: number;
}

/** PostgreSQL error classes that mean "the database is not there" rather than "this row is wrong". */
function isUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (!e) return false;
  if (error instanceof DbWriteTimeoutError) return true;
  if (
    typeof e.code === 'string' &&
    (/^(08|57P0|53)/.test(e.code) ||
      ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(
        e.code,
      ))
  )
    return true;
  return /Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|timeout/i.test(
    e.message ?? '',
  );
}

/** Checks a pattern before it reaches SQL: a bad row is refused alone, it never blocks a batch. */
export function patternProblem(p: AttackPattern): string | undefined {
  if (typeof p.patternId !== 'string' || p.patternId === '') return 'patternId missing';
  if (!Array.isArray(p.features) || p.features.length === 0 || p.features.length > 100)
    return 'features must hold 1–100 values';
  if (!p.features.every(Number.isFinite)) return 'features must be finite';
  if (!Number.isInteger(p.action) || p.action < 0 || p.action > 5) return 'action out of range';
  if (
    !Number.isFinite(p.reward) ||
    !Number.isFinite(p.confidence) ||
    p.confidence < 0 ||
    p.confidence > 1
  )
    return 'reward/confidence invalid';
  if (!Number.isFinite(p.timestamp)) return 'timestamp invalid';
  return undefined;
}

/**
 * Checks a trajectory before it reaches SQL: each stage is stored as one row with its states end to
 * end, so they must have one length (the state dimension, fixed per process).
 */
export function trajectoryProblem(e: EpisodeTrajectory): string | undefined {
  const dims = new Map<number, number>();
  for (const s of e.steps) {
    const dim = dims.get(s.stage) ?? s.state.length;
    dims.set(s.stage, dim);
    if (s.state.length === 0) return `stage ${s.stage} step ${s.step}: empty state`;
    if (s.state.length !== dim)
      return `stage ${s.stage}: states of ${dim} and ${s.state.length} values`;
  }
  return undefined;
}

/**
 * Inserts patterns; returns the ids stored now. New rows are the normal case: 'copy' (binary COPY)
 * or 'insert' store them without ON CONFLICT, and a duplicate fails the whole batch with a unique
 * violation, which the caller redoes 'idempotent' (ON CONFLICT … RETURNING, as journal replays
 * do). Measured with 400k rows and four writers: idempotent 40k, insert 46–58k, copy 66–76k rows/s.
 */
async function insertPatterns(
  client: pg.PoolClient,
  rows: readonly AttackPattern[],
  centroids: Centroids | undefined,
  mode: 'copy' | 'insert' | 'idempotent',
): Promise<string[]> {
  if (rows.length === 0) return [];
  const cells = await cellsFor(
    centroids,
    rows.map((p) => p.features),
  );
  if (mode === 'copy') {
    await pipeline(
      Readable.from([encodePatterns(rows, cells)]),
      client.query(
        copyFrom(`COPY attack_patterns (${PATTERN_COPY_COLUMNS}) FROM STDIN (FORMAT binary)`),
      ),
    );
    return rows.map((p) => p.patternId);
  }
  const features = float8ArrayBinary(rows.map((p) => p.features));
  const inserted = await client.query<{ id: string }>(
    `INSERT INTO attack_patterns (pattern_id, features, action, reward, attack_type, confidence, policy_confidence, created_at, model_version, episode_id, stage, cell)
     SELECT id, cube(($2::float8[])[f0:f1]), a, r, t, c, c, to_timestamp(ts / 1000.0), v, e, s, cell
       FROM unnest($1::text[], $12::int[], $13::int[], $3::int2[], $4::real[], $5::text[], $6::real[], $7::float8[], $8::text[], $9::text[], $10::int2[], $11::int[])
         AS x(id, f0, f1, a, r, t, c, ts, v, e, s, cell)
     ${mode === 'idempotent' ? 'ON CONFLICT (pattern_id) DO NOTHING RETURNING pattern_id AS id' : ''}`,
    [
      rows.map((p) => p.patternId),
      features.buffer,
      rows.map((p) => p.action),
      rows.map((p) => p.reward),
      rows.map((p) => p.attackType),
      rows.map((p) => p.confidence),
      rows.map((p) => p.timestamp),
      rows.map((p) => p.modelVersion),
      rows.map((p) => p.episodeId),
      rows.map((p) => p.stage),
      cells,
      features.from,
      features.to,
    ],
  );
  return mode === 'idempotent' ? inserted.rows.map((r) => r.id) : rows.map((p) => p.patternId);
}

/** Whether the server's cube reads binary values (cube ≥ 1.5): then new rows go by COPY. */
async function readsBinaryCube(db: pg.Pool | pg.PoolClient): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT typreceive::text <> '-' AS ok FROM pg_type WHERE typname = 'cube'`,
  );
  return rows[0]?.ok === true;
}

/** A unique violation on a pattern id: the batch holds a pattern stored before. */
const isDuplicatePattern = (error: unknown): boolean =>
  (error as { code?: string; constraint?: string })?.code === '23505' &&
  (error as { constraint?: string }).constraint === 'attack_patterns_pkey';

/** The id an episode is stored under when its own is another run's: "<id>#<start ms>". */
export const renamedEpisodeId = (e: EpisodeTrajectory): string =>
  `${e.episodeId}#${Math.round(e.startedAt)}`;

/**
 * Episodes, then the steps of those stored now (an episode stored by an earlier attempt keeps
 * its trajectory): one INSERT for the episode rows, one binary COPY of a row per stage. Per
 * episode an INSERT and a JSON document of its steps cost the DB writer's thread most of its time
 * in the e2e bench's profile; a row per step cost about a fifth of npm start's throughput, most
 * of it PostgreSQL's work per row.
 * An id already stored for a run that started at another time (a sandbox that restarted and
 * numbers its episodes from 1 again) is not this episode's: it goes in beside it, as
 * renamedEpisodeId, rather than being dropped as a journal replay's repeat — unless it is the same
 * file's run completing one stored as partial: then its stages replace the stored ones. Returns
 * the ids stored now, and which of them are renamed ones.
 */
async function insertEpisodes(
  client: pg.PoolClient,
  rows: readonly EpisodeTrajectory[],
): Promise<{ stored: string[]; renamed: string[] }> {
  if (rows.length === 0) return { stored: [], renamed: [] };
  // One row per id: a second run under an id in the same batch is renamed, a repeat dropped.
  const byId = new Map<string, EpisodeTrajectory>();
  const again: EpisodeTrajectory[] = [];
  const continued: EpisodeTrajectory[] = [];
  for (const e of rows) {
    const first = byId.get(e.episodeId);
    if (!first) byId.set(e.episodeId, e);
    else if (Math.abs(first.startedAt - e.startedAt) >= 1) again.push(e);
  }
  const unique = [...byId.values()];
  const { rows: stored } = await client.query<{ id: string }>(
    `INSERT INTO episodes (episode_id, label, partial, failure_reason, model_version, total_reward, transitions, started_at, ended_at, artifact_hash)
     SELECT id, l, p, f, v, r, n, to_timestamp(t0 / 1000.0), to_timestamp(t1 / 1000.0), h
       FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::real[], $7::int[], $8::float8[], $9::float8[], $10::text[])
         AS x(id, l, p, f, v, r, n, t0, t1, h)
     ON CONFLICT (episode_id) DO NOTHING
     RETURNING episode_id AS id`,
    [
      unique.map((e) => e.episodeId),
      unique.map((e) => e.label),
      unique.map((e) => e.partial),
      unique.map((e) => e.failureReason),
      unique.map((e) => e.modelVersion),
      unique.map((e) => e.totalReward),
      unique.map((e) => e.steps.length),
      unique.map((e) => e.startedAt),
      unique.map((e) => e.endedAt),
      unique.map((e) => e.artifactHash ?? null),
    ],
  );
  const fresh = new Set(stored.map((r) => r.id));
  if (fresh.size < unique.length) {
    // Stored before: by an earlier attempt at this row (the same start), or by another run.
    const taken = unique.filter((e) => !fresh.has(e.episodeId));
    const { rows: before } = await client.query<{
      id: string;
      t0: number;
      t1: number;
      partial: boolean;
      hash: string | null;
    }>(
      `SELECT episode_id AS id, extract(epoch FROM started_at)::float8 * 1000 AS t0,
              extract(epoch FROM ended_at)::float8 * 1000 AS t1, partial, artifact_hash AS hash
         FROM episodes WHERE episode_id = ANY($1::text[])`,
      [taken.map((e) => e.episodeId)],
    );
    const stored = new Map(before.map((r) => [r.id, r]));
    for (const e of taken) {
      const s = stored.get(e.episodeId);
      // This run, stored before (a part completed by it keeps its start, and takes its end).
      if (!s || Math.abs(s.t0 - e.startedAt) < 1 || Math.abs(s.t1 - e.endedAt) < 1) continue;
      // The same file's run left partial (Warden stopped, the sandbox went silent) and then
      // finished: the sandbox sent it again from its start, and the whole run replaces the part.
      if (s.partial && !e.partial && s.hash !== null && s.hash === (e.artifactHash ?? null))
        continued.push(e);
      else again.push(e);
    }
  }
  // The stages the whole run holds replace the stored ones; a stage it does not hold stays (the
  // next Warden sees only the stage still running: stage 1 stored complete stays beside stage 2).
  for (const e of continued) {
    const stages = [...new Set(e.steps.map((s) => s.stage))];
    await client.query(
      `WITH gone AS (
         DELETE FROM trajectory_stages WHERE episode_id = $1 AND stage = ANY($2::smallint[])
         RETURNING cardinality(steps) AS n, (SELECT coalesce(sum(r), 0) FROM unnest(rewards) r) AS r)
       UPDATE episodes SET partial = false, failure_reason = NULL,
              label = CASE WHEN $3 = 'unknown' THEN label ELSE $3 END, model_version = $4,
              ended_at = to_timestamp($5 / 1000.0),
              transitions = transitions - (SELECT coalesce(sum(n), 0) FROM gone) + $6,
              total_reward = total_reward - (SELECT coalesce(sum(r), 0) FROM gone) + $7
        WHERE episode_id = $1`,
      [e.episodeId, stages, e.label, e.modelVersion, e.endedAt, e.steps.length, e.totalReward],
    );
    fresh.add(e.episodeId); // its stages go in with the rest below
  }
  const renamed =
    again.length > 0
      ? (
          await insertEpisodes(
            client,
            again.map((e) => ({ ...e, episodeId: renamedEpisodeId(e) })),
          )
        ).stored
      : [];
  if (renamed.length > 0) {
    // The run's learned patterns came before its trajectory (one at each stage's outcome) under
    // the id as the sandbox gave it: those made within the run's time now name it as stored.
    const moved = again.filter((e) => renamed.includes(renamedEpisodeId(e)));
    await client.query(
      `UPDATE attack_patterns p SET episode_id = x.renamed
         FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS x(id, renamed, t0, t1)
        WHERE p.episode_id = x.id
          AND p.created_at BETWEEN to_timestamp(x.t0 / 1000.0) AND to_timestamp(x.t1 / 1000.0)`,
      [
        moved.map((e) => e.episodeId),
        moved.map(renamedEpisodeId),
        moved.map((e) => e.startedAt),
        moved.map((e) => e.endedAt),
      ],
    );
  }
  const result = { stored: [...fresh, ...renamed], renamed };
  const withSteps = unique.filter((e) => fresh.has(e.episodeId) && e.steps.length > 0);
  if (withSteps.length === 0) return result;
  await pipeline(
    Readable.from([encodeTrajectoryStages(withSteps)]),
    client.query(
      copyFrom(
        `COPY trajectory_stages (${TRAJECTORY_STAGE_COPY_COLUMNS}) FROM STDIN (FORMAT binary)`,
      ),
    ),
  );
  return result;
}

export interface WriterOptions {
  /** Rows per journal replay batch (database.batchRows). */
  readonly batchRows?: number;
  /** Applied to every stored text field not encrypted (db/sanitize.ts). */
  readonly sanitize?: (text: string) => string;
  readonly cipher?: FieldCipher;
  /** Batches in flight at once (database.writeConnections). */
  readonly connections?: number;
  /** New patterns by binary COPY when the server's cube reads binary values (else INSERT). */
  readonly copy?: boolean;
  /** A batch not committed by then counts as an outage: its rows go to the journal (database.writeTimeoutMs). */
  readonly writeTimeoutMs?: number;
}

/** A batch the database did not answer within database.writeTimeoutMs (a stalled server). */
export class DbWriteTimeoutError extends WardenError {
  override readonly code = 'WARDEN_DB_WRITE_TIMEOUT';
}

export class DbWriter {
  readonly #pool: pg.Pool;
  readonly #journal: Journal<DbRecord>;
  readonly #log: WriterLogger;
  readonly #batch: number;
  readonly stats: WriterStats = {
    persisted: 0,
    queued: 0,
    replayed: 0,
    refused: 0,
    outages: 0,
    batches: 0,
    lastWriteMs: 0,
    uncorroborated: 0,
    renamed: 0,
  };
  #down = false;
  #training = false;
  /** Writes started by submit() and not yet finished (at most #connections), with their records. */
  readonly #inFlight = new Map<Promise<void>, readonly DbRecord[]>();
  /** settle() journaled the batches still in flight: their later outcome no longer matters. */
  #abandoned = false;
  /** settle() began: a journal replay stops between batches. */
  #stopping = false;
  readonly #connections: number;
  readonly #writeTimeoutMs: number;
  readonly #toCorroborate: { id: string; features: readonly number[] }[] = [];
  #corroborating = false;
  #replaying: Promise<void> | undefined;
  /** Whether new patterns can go by binary COPY (asked once). */
  #copy: Promise<boolean> | undefined;
  /** Per-batch failures, each logged once and then at most every 10 s with its counts. */
  readonly #repeats = {
    dbRefused: new Repeats(),
    journalFull: new Repeats(),
    journalUnwritable: new Repeats(),
    lost: new Repeats(),
    behind: new Repeats(),
  };

  readonly #clean: (r: DbRecord) => DbRecord;

  constructor(
    pool: pg.Pool,
    journal: Journal<DbRecord>,
    log: WriterLogger,
    options: WriterOptions = {},
  ) {
    const {
      batchRows = 5_000,
      sanitize = (t: string) => t,
      cipher = FieldCipher.none(),
      connections = 4,
      copy = true,
      writeTimeoutMs = 30_000,
    } = options;
    this.#writeTimeoutMs = writeTimeoutMs;
    this.#connections = Math.max(1, connections);
    if (!copy) this.#copy = Promise.resolve(false);
    // A chosen field is encrypted (reversible for key holders); any other text is sanitised.
    const text = (field: EncryptableField, value: string) =>
      cipher.encrypts(field) ? cipher.protect(field, value) : sanitize(value);
    this.#clean = (r) => {
      switch (r.type) {
        case 'attack-pattern':
          return {
            ...r,
            attackType: text('attackType', r.attackType),
            episodeId: text('episodeId', r.episodeId),
          };
        case 'episode-trajectory':
          return {
            ...r,
            episodeId: text('episodeId', r.episodeId),
            failureReason: r.failureReason === null ? null : text('failureReason', r.failureReason),
            artifactHash:
              r.artifactHash == null ? null : cipher.protect('artifactHash', r.artifactHash),
          };
        case 'experience-rows':
          return {
            ...r,
            rows: r.rows.map((x) => ({ ...x, episodeId: text('episodeId', x.episodeId) })),
          };
      }
    };
    this.#pool = pool;
    this.#journal = journal;
    this.#log = log;
    this.#batch = batchRows;
  }

  /** New patterns whose neighbours' confidence has not been moved yet. */
  get corroborationBacklog(): number {
    return this.#toCorroborate.length;
  }

  /**
   * One turn of corroboration (the actor calls it every CORROBORATE_EVERY_MS): the oldest waiting
   * patterns move their earlier neighbours' confidence. A failed turn puts them back.
   */
  async corroborate(): Promise<number> {
    if (this.#corroborating || this.#down || this.#toCorroborate.length === 0) return 0;
    this.#corroborating = true;
    const turn = this.#toCorroborate.splice(0, CORROBORATE_PER_TURN);
    try {
      const centroids = await loadCentroids(this.#pool);
      await corroborate(
        this.#pool,
        centroids ? staleBelow(centroids) : 0,
        turn.map((t) => t.id),
        turn.map((t) =>
          centroids && t.features.length === centroids.dim
            ? nearbyCells(centroids, t.features, 4)
            : null,
        ),
      );
      return turn.length;
    } catch (error) {
      this.#toCorroborate.unshift(...turn);
      this.#log.warn({ err: error }, 'corroboration failed; retried next turn');
      return 0;
    } finally {
      this.#corroborating = false;
    }
  }

  get journalBytes(): number {
    return this.#journal.pendingBytes;
  }

  /**
   * Rows the fast way; a batch holding an already stored pattern is redone idempotently. Journal
   * replays go this way too: their rows are nearly always new (a row is stored twice only when a
   * batch committed after it was journaled, or a crash fell between a commit and the journal's
   * offset), and COPY stores patterns at 66–76k rows/s against 40k for the idempotent INSERT.
   */
  async #insertNew(records: readonly DbRecord[], timeoutMs = this.#writeTimeoutMs): Promise<void> {
    this.#copy ??= readsBinaryCube(this.#pool).catch((error: unknown) => {
      this.#copy = undefined; // asked again next time
      throw error;
    });
    try {
      await this.#insert(records, (await this.#copy) ? 'copy' : 'insert', timeoutMs);
    } catch (error) {
      if (!isDuplicatePattern(error)) throw error;
      await this.#insert(records, 'idempotent', timeoutMs);
    }
  }

  /** One batch in one transaction on `client`: patterns, episodes with their steps, experiences. */
  async #transaction(
    client: pg.PoolClient,
    records: readonly DbRecord[],
    mode: 'copy' | 'insert' | 'idempotent',
  ): Promise<void> {
    await client.query('BEGIN');
    const patterns = records.filter((r): r is AttackPattern => r.type === 'attack-pattern');
    const centroids = patterns.length > 0 ? await loadCentroids(this.#pool) : undefined;
    const insertedIds = await insertPatterns(client, patterns, centroids, mode);
    // Confidence from later similar outcomes: queued for the background step, and only for rows
    // this insert added (a journal replay never counts twice).
    if (insertedIds.length > 0) {
      const byId = new Map(patterns.map((p) => [p.patternId, p.features]));
      for (const id of insertedIds) this.#toCorroborate.push({ id, features: byId.get(id)! });
      const over = this.#toCorroborate.length - MAX_CORROBORATION_QUEUE;
      if (over > 0) {
        this.#toCorroborate.splice(0, over); // a bulk load: the oldest wait no longer, counted
        this.stats.uncorroborated += over;
      }
    }
    const { renamed } = await insertEpisodes(
      client,
      records.filter((r): r is EpisodeTrajectory => r.type === 'episode-trajectory'),
    );
    await insertExperiences(
      client,
      records.flatMap((r) => (r.type === 'experience-rows' ? r.rows : [])),
    );
    await client.query('COMMIT');
    if (renamed.length > 0) {
      if (this.stats.renamed === 0)
        this.#log.warn(
          { episodes: renamed.slice(0, 5) },
          'episode ids already stored for other runs (a sandbox reusing its ids, as after a restart that numbers them from 1 again): stored as <id>#<start ms> beside them (counted as renamed)',
        );
      this.stats.renamed += renamed.length;
    }
  }

  async #insert(
    records: readonly DbRecord[],
    mode: 'copy' | 'insert' | 'idempotent',
    timeoutMs = this.#writeTimeoutMs,
  ): Promise<void> {
    const t0 = performance.now();
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    const work = this.#transaction(client, records, mode);
    try {
      if (!(await settlesWithin(work, timeoutMs)))
        throw new DbWriteTimeoutError(
          `the database did not commit a batch of ${records.length} rows within ${timeoutMs} ms (database.writeTimeoutMs)`,
        );
      await work;
    } catch (error) {
      if (error instanceof DbWriteTimeoutError) {
        // A stalled server (stopped, or cut off without a reset) would hold this batch, and every
        // one behind it in memory, for as long as it stalls: the rows go to the journal instead,
        // and the connection is dropped. Should the batch still commit, the replay's idempotent
        // keys make its rows no-ops.
        broken = error;
      } else {
        await client.query('ROLLBACK').catch(() => undefined);
        if (isUnavailable(error)) broken = error as Error; // drop this connection, not reuse it
      }
      throw error;
    } finally {
      client.release(broken);
    }
    this.stats.batches++;
    this.stats.lastWriteMs = performance.now() - t0;
    // Nearest-neighbour cells are trained once the store is big enough, and rows left without a
    // current cell are filed (in the background).
    if (!this.#training && records.some((r) => r.type === 'attack-pattern')) {
      this.#training = true;
      maintainCells(this.#pool)
        .then((done) => {
          if (done === 'trained')
            this.#log.info({}, 'nearest-neighbour cells trained; patterns filed');
        })
        .catch((error) => this.#log.warn({ err: error }, 'training nearest-neighbour cells failed'))
        .finally(() => {
          this.#training = false;
        });
    }
  }

  /** Persists the records, or queues them durably when the database is unreachable. */
  async write(records: readonly DbRecord[]): Promise<WriteOutcome> {
    const good = this.#prepare(records, true);
    if (good.length === 0) return 'refused';
    // While the database answers, new rows go straight to it, also with rows still in the journal:
    // its replay stores them beside the new ones. Queuing new rows behind a backlog kept the order
    // but cost each row a journal write and read on top of its insert (measured 0.8 ms of the
    // writer's thread per 60-step episode, against 0.1 ms for the insert's encoding), so on a busy
    // machine a backlog, once there, never drained: every new row joined it.
    if (!this.#down) {
      try {
        await this.#insertNew(good);
        this.stats.persisted += good.length;
        return 'persisted';
      } catch (error) {
        if (this.#abandoned) return 'queued'; // settle() already put the batch in the journal
        if (!isUnavailable(error)) {
          this.stats.refused += good.length;
          const repeated = this.#repeats.dbRefused.note(good.length);
          if (repeated)
            this.#log.error(
              { err: error, ...repeated },
              'database refused the batch; rows refused',
            );
          return 'refused';
        }
        this.#down = true;
        this.stats.outages++;
        this.#log.error({ err: error }, 'database unreachable: queueing rows in the local journal');
      }
    }
    return this.#toJournal(good);
  }

  /** Appends prepared rows to the journal: queued, or refused (counted, logged) when it cannot. */
  #toJournal(good: readonly DbRecord[]): WriteOutcome {
    try {
      this.#journal.append(good);
    } catch (error) {
      const full = error instanceof JournalFullError;
      if (!full && !(error instanceof JournalWriteError)) throw error;
      this.stats.refused += good.length;
      const repeated = (full ? this.#repeats.journalFull : this.#repeats.journalUnwritable).note(
        good.length,
      );
      if (repeated)
        this.#log.error(
          {
            alert: full ? 'warden_journal_full' : 'warden_journal_unwritable',
            err: error,
            ...repeated,
          },
          full ? 'local journal full: rows refused' : 'local journal not writable: rows refused',
        );
      return 'refused';
    }
    this.stats.queued += good.length;
    return 'queued';
  }

  /** Whether submit() would start a write at once (a connection is free). */
  get canSubmit(): boolean {
    return this.#inFlight.size < this.#connections;
  }

  /**
   * Rows arriving faster than the database takes them: into the journal now, stored by its
   * replay beside the rows that come after them.
   */
  spill(records: readonly DbRecord[]): WriteOutcome {
    const good = this.#prepare(records, true);
    if (good.length === 0) return 'refused';
    const repeated = this.#repeats.behind.note(good.length);
    if (repeated)
      this.#log.warn(
        { ...repeated },
        'database slower than rows arrive: rows queued in the local journal',
      );
    return this.#toJournal(good);
  }

  /**
   * Starts writing the records and resolves once another batch may be submitted: up to
   * `connections` batches are written at once, each in its own transaction, so PostgreSQL inserts
   * one batch while the next is prepared (measured: ×1.8 over one at a time). Rows of different
   * batches may commit in any order; the idempotent keys keep a later journal replay exact.
   */
  async submit(
    records: readonly DbRecord[],
    done?: (outcome: WriteOutcome) => void,
  ): Promise<void> {
    while (this.#inFlight.size >= this.#connections) await Promise.race(this.#inFlight.keys());
    const writing: Promise<void> = this.write(records).then(
      (outcome) => done?.(outcome),
      (error: unknown) => {
        this.stats.refused += records.length; // an unforeseen failure: counted, loud
        const repeated = this.#repeats.lost.note(records.length);
        if (repeated)
          this.#log.error({ err: error, ...repeated }, 'rows neither written nor queued');
      },
    );
    const tracked = writing.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.set(tracked, records);
  }

  /** Resolves when every submitted batch has been persisted, queued or refused. */
  async drained(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight.keys());
  }

  /**
   * For stopping: waits up to `budgetMs` for the batches in flight; those still running then go
   * to the journal as well (a replay is idempotent: a batch that commits after all is stored
   * once), so none is lost when the process ends before they commit. Returns the rows journaled.
   */
  async settle(budgetMs: number): Promise<number> {
    // A journal replay in progress ends after its current batch (the journal closes next).
    this.#stopping = true;
    const replaying = this.#replaying ?? Promise.resolve();
    if (await settlesWithin(Promise.allSettled([this.drained(), replaying]), budgetMs)) return 0;
    this.#abandoned = true;
    let rows = 0;
    for (const records of this.#inFlight.values()) {
      const good = this.#prepare(records, false);
      this.#journal.append(good);
      rows += good.length;
    }
    this.stats.queued += rows;
    return rows;
  }

  /**
   * Sanitised (and encrypted) before the database or the journal sees them: nothing raw is ever
   * at rest. Patterns and trajectories that fail the checks are refused (counted once, when
   * `count`).
   */
  #prepare(records: readonly DbRecord[], count: boolean): DbRecord[] {
    return records.map(this.#clean).filter((r) => {
      const problem =
        r.type === 'attack-pattern'
          ? patternProblem(r)
          : r.type === 'episode-trajectory'
            ? trajectoryProblem(r)
            : undefined;
      if (problem && count) {
        this.stats.refused++;
        if (r.type === 'attack-pattern')
          this.#log.warn({ patternId: r.patternId, problem }, 'pattern refused');
        else
          this.#log.warn(
            { episodeId: (r as EpisodeTrajectory).episodeId, problem },
            'trajectory refused',
          );
      }
      return problem === undefined;
    });
  }

  /**
   * Replays the journal in order, a batch at a time; stops at the first sign the database is still
   * away. The first batch stored ends the outage: new rows go to the database again, and the rest
   * of the journal is replayed beside them.
   */
  retry(): Promise<void> {
    this.#replaying ??= (async () => {
      let stored = 0;
      try {
        while (!this.#stopping) {
          const batch = this.#journal.pending(this.#batch);
          const rows = batch.values;
          if (rows.length === 0 && batch.unreadable === 0) {
            if (stored > 0) this.#log.info({ rows: stored }, 'local journal drained');
            this.#down = false;
            return;
          }
          if (rows.length > 0) {
            try {
              // A replay batch holds up to 16 MiB of journal, many times a live batch: it gets four
              // deadlines, so a slow but working database is not taken for a stalled one.
              await this.#insertNew(rows, 4 * this.#writeTimeoutMs);
              stored += rows.length;
            } catch (error) {
              if (isUnavailable(error)) {
                this.#down = true;
                this.#log.warn({ err: error }, 'journal replay: the database is still unavailable');
                return;
              }
              // A row the database refuses on replay must not block the rest: refuse and move on.
              this.stats.refused += rows.length;
              this.#log.error(
                { err: error, rows: rows.length },
                'database refused journal rows; skipped',
              );
            }
          }
          this.#journal.commit(batch.end);
          this.stats.replayed += rows.length;
          if (this.#down && rows.length > 0) {
            // The database answered (stored the batch, or refused its rows as rows).
            this.#down = false;
            this.#log.info(
              { pendingBytes: this.#journal.pendingBytes },
              'database back: new rows go to it again; the local journal replays beside them',
            );
          }
          if (batch.unreadable > 0) {
            // Counted once, when the batch that skips them is committed.
            this.stats.refused += batch.unreadable;
            this.#log.error(
              { alert: 'warden_journal_damaged', lines: batch.unreadable },
              'journal lines that do not parse (damaged on disk); skipped',
            );
          }
        }
      } finally {
        this.#replaying = undefined;
      }
    })();
    return this.#replaying;
  }
}
