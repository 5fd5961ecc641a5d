// Persistence on a real PostgreSQL: migrations (idempotent), patterns with every field (24, 25),
// queries by type, time and similarity with confidence, served by their indexes (27, 28),
// trajectories in full (43), an outage mid-stream (26), SIGKILL during an outage, hostile strings.

import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import test from 'ava';
import pg from 'pg';
import { type DbRecord, DbWriter } from '../../src/actors/db-writer/writer.ts';
import { databaseTrouble } from '../../src/cli/start.ts';
import { createPool } from '../../src/db/connect.ts';
import { CELLS } from '../../src/db/ivf.ts';
import {
  loadCentroids,
  maintainCells,
  reindexPatterns,
  trainCellsIfDue,
} from '../../src/db/ivf-store.ts';
import { Journal } from '../../src/db/journal.ts';
import { MIGRATIONS, migrate } from '../../src/db/migrations.ts';
import { byAttackType, byTimeRange, nearest } from '../../src/db/patterns.ts';
import { makeSanitizer } from '../../src/db/sanitize.ts';
import type { AttackPattern } from '../../src/messages/pattern.ts';
import type { EpisodeTrajectory } from '../../src/messages/trajectory.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { metricsRegistry } from '../../src/services/metrics.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { attackPattern, testConfig, until } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

let db: TestDatabase;
test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  await db?.stop();
});

const journalDir = () => tempDir('warden-journal-');
/** A DB writer on the test database with a journal in a fresh directory. */
const newWriter = (journalBytes = 1 << 20, options?: ConstructorParameters<typeof DbWriter>[3]) =>
  new DbWriter(db.pool, new Journal<DbRecord>(journalDir(), journalBytes), silentLogger, options);
const pattern = attackPattern;
const countWhere = async (table: string, where: string) =>
  Number((await db.pool.query(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)).rows[0].n);
const count = async (where = 'true', params: unknown[] = []) =>
  Number(
    (await db.pool.query(`SELECT count(*) AS n FROM attack_patterns WHERE ${where}`, params))
      .rows[0].n,
  );

/** A benign episode's trajectory: one stage-1 step per state, done at the last. */
const stageOneTrajectory = (
  id: string,
  states: readonly (Float32Array | readonly number[])[],
): EpisodeTrajectory => ({
  type: 'episode-trajectory',
  episodeId: id,
  label: 'benign',
  partial: false,
  failureReason: null,
  modelVersion: 'v1',
  totalReward: 0,
  startedAt: 1,
  endedAt: 2,
  steps: states.map((state, step) => ({
    stage: 1,
    step,
    state,
    action: 0,
    reward: 0,
    done: step === states.length - 1,
  })),
});

test.serial('migrations run twice are a no-op', async (t) => {
  const client = await db.pool.connect();
  try {
    t.deepEqual(await migrate(client), []);
    t.deepEqual(await migrate(client), []);
    const { rows } = await client.query('SELECT version FROM schema_migrations');
    t.deepEqual(
      rows.map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
  } finally {
    client.release();
  }
});

test.serial(
  'properties 24, 25: every pattern is persisted with all its fields; a replayed key is stored once',
  async (t) => {
    const writer = newWriter();
    const p = pattern('p-fields', { features: [0.5, 0.25, 1, 0], attackType: 'QakBot', stage: 2 });
    t.is(await writer.write([p]), 'persisted');
    t.is(await writer.write([p]), 'persisted', 'same key again');
    t.is(await count('pattern_id = $1', ['p-fields']), 1);
    // A batch mixing a stored pattern with new ones: the new ones are stored, the old one once.
    const fresh = pattern('p-fresh', { features: [0.1, 0.2, 0.3, 0.4], attackType: 'QakBot' });
    t.is(await writer.write([fresh, p]), 'persisted');
    t.is(await count('pattern_id = ANY($1)', [['p-fields', 'p-fresh']]), 2);
    await db.pool.query(`DELETE FROM attack_patterns WHERE pattern_id = 'p-fresh'`);
    const [row] = await byAttackType(db.pool, 'QakBot');
    t.like(row, {
      patternId: 'p-fields',
      action: 3,
      reward: 1,
      attackType: 'QakBot',
      modelVersion: 'v1',
      episodeId: 'ep-1',
      stage: 2,
    });
    t.deepEqual(row!.features, [0.5, 0.25, 1, 0]);
    t.true(Math.abs(row!.confidence - 0.8) < 1e-6);
    t.is(row!.createdAt.getTime(), Date.UTC(2026, 0, 1));
    // Servers whose cube reads text only take new rows by INSERT: the same row results.
    const byInsert = newWriter(1 << 20, {
      copy: false,
    });
    t.is(
      await byInsert.write([{ ...p, patternId: 'p-insert', attackType: 'QakBot-i' }]),
      'persisted',
    );
    const [inserted] = await byAttackType(db.pool, 'QakBot-i');
    t.deepEqual(
      { ...inserted, patternId: 'p-fields', attackType: 'QakBot' },
      row,
      'COPY and INSERT store the same values',
    );
    t.is(await writer.write([pattern('bad', { features: [Number.NaN] })]), 'refused');
    t.is(writer.stats.refused, 1, 'a malformed row is refused and counted, not stored');
  },
);

test.serial(
  'properties 27, 28: by type, by time range and k nearest, each with confidence, served by their indexes',
  async (t) => {
    const writer = newWriter(1 << 24);
    const types = ['injection', 'persistence', 'network', 'ransomware'];
    const rows = Array.from({ length: 4_000 }, (_, i) =>
      pattern(`q-${i}`, {
        features: [(i % 97) / 97, (i % 89) / 89, (i % 83) / 83, (i % 79) / 79],
        attackType: types[i % 4]!,
        confidence: (i % 10) / 10,
        timestamp: Date.UTC(2026, 1, 1) + i * 60_000,
      }),
    );
    for (let i = 0; i < rows.length; i += 1_000)
      t.is(await writer.write(rows.slice(i, i + 1_000)), 'persisted');
    await db.pool.query('ANALYZE attack_patterns');

    const ransomware = await byAttackType(db.pool, 'ransomware', 5);
    t.is(ransomware.length, 5);
    t.true(
      ransomware.every((r) => r.attackType === 'ransomware' && typeof r.confidence === 'number'),
    );
    t.true(ransomware[0]!.createdAt >= ransomware[4]!.createdAt, 'newest first');

    const from = new Date(Date.UTC(2026, 1, 1) + 100 * 60_000);
    const window = await byTimeRange(db.pool, from, new Date(from.getTime() + 10 * 60_000));
    t.is(window.length, 10);
    t.true(window.every((r) => r.createdAt >= from && typeof r.confidence === 'number'));

    const query = [3 / 97, 3 / 89, 3 / 83, 3 / 79];
    const knn = await nearest(db.pool, query, 10);
    t.is(knn.length, 10);
    t.is(knn[0]!.patternId, 'q-3', 'the identical vector is the nearest');
    t.is(knn[0]!.distance, 0);
    t.true(
      knn.every((r, i) => i === 0 || r.distance! >= knn[i - 1]!.distance!),
      'ordered by distance',
    );
    t.true(knn.every((r) => r.score! <= r.confidence + 1e-9));

    const plan = async (sql: string, params: unknown[]) =>
      (await db.pool.query(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
    // Past a size the store files patterns into cells (db/ivf.ts); kNN then reads a few cells
    // through their index, and still finds the identical vector first.
    t.true(await trainCellsIfDue(db.pool, 1_000));
    const [{ unfiled }] = (
      await db.pool.query('SELECT count(*)::int AS unfiled FROM attack_patterns WHERE cell IS NULL')
    ).rows;
    t.is(unfiled, 0, 'every stored pattern filed into a cell');
    const filed = await nearest(db.pool, query, 10);
    t.is(filed[0]!.patternId, 'q-3');
    t.is(filed.length, 10);
    // Maintenance: nothing left to file; rows stored by cell; answers unchanged.
    t.like(await reindexPatterns(db.pool), { trained: false, filed: 0 });
    const again = await nearest(db.pool, query, 10);
    t.deepEqual(
      again.map((r) => r.distance),
      filed.map((r) => r.distance),
      'the same neighbours (ties may swap places)',
    );
    t.deepEqual(again.map((r) => r.patternId).sort(), filed.map((r) => r.patternId).sort());
    t.regex(
      await plan(
        `SELECT pattern_id FROM attack_patterns WHERE cell = ANY($1::int[]) OR cell IS NULL OR cell < $2`,
        [[1, 2, 3, 4, 5, 6, 7, 8], 0],
      ),
      /attack_patterns_cell/,
    );
    // By type and by time: an index serves them (which one is the planner's call), never a full scan.
    const typePlan = await plan(
      `SELECT pattern_id FROM attack_patterns WHERE attack_type = $1 ORDER BY created_at DESC LIMIT 10`,
      ['network'],
    );
    t.regex(typePlan, /Index Scan using attack_patterns_(type_time|time)/);
    t.notRegex(typePlan, /Seq Scan/);
    const timePlan = await plan(
      `SELECT pattern_id FROM attack_patterns WHERE created_at >= $1 AND created_at < $2`,
      [from, new Date(from.getTime() + 600_000)],
    );
    t.regex(
      timePlan,
      /Index (Only )?Scan using attack_patterns_time|Bitmap Index Scan on attack_patterns_time/,
    );
    t.notRegex(timePlan, /Seq Scan/);
  },
);

test.serial(
  'retraining as the store grows: new cells for every row; a row filed by a writer still holding the old cells is found, then refiled',
  async (t) => {
    const query = [3 / 97, 3 / 89, 3 / 83, 3 / 79];
    // Another process's writer that read the centroids before the retraining.
    const elsewhere = createPool(db.server.url, silentLogger, 2);
    t.teardown(() => elsewhere.end());
    t.is((await loadCentroids(elsewhere))?.generation, 0);
    const before = await nearest(db.pool, query, 10);

    t.like(await reindexPatterns(db.pool, { retrain: true }), { trained: true, generation: 1 });
    t.is(await count('cell IS NULL OR (cell >= 0 AND cell < $1)', [CELLS]), 0, 'all refiled');
    const after = await nearest(db.pool, query, 10);
    t.is(after[0]!.patternId, 'q-3');
    t.deepEqual(
      after.map((r) => r.distance),
      before.map((r) => r.distance),
    );

    const writer = new DbWriter(
      elsewhere,
      new Journal<DbRecord>(journalDir(), 1 << 20),
      silentLogger,
    );
    t.is(await writer.write([pattern('late-1', { features: query })]), 'persisted');
    t.is(await count(`pattern_id = 'late-1' AND cell < $1`, [CELLS]), 1, 'filed in an old cell');
    const found = await nearest(db.pool, query, 10);
    t.true(
      found.some((r) => r.patternId === 'late-1' && r.distance === 0),
      'a row in an old cell is still ranked',
    );
    t.is(await maintainCells(db.pool), 'filed');
    t.is(await count(`pattern_id = 'late-1' AND cell >= $1`, [CELLS]), 1, 'refiled');
  },
);

test.serial(
  'property 43: a complete two-stage trajectory is stored in full; a partial one with its failure reason',
  async (t) => {
    const writer = newWriter();
    const steps = [1, 2].flatMap((stage) =>
      Array.from({ length: 5 }, (_, step) => ({
        stage: stage as 1 | 2,
        step,
        state: [step / 5, stage],
        action: (step === 4 ? 3 : 0) as 0 | 3,
        reward: step === 4 ? 1 : -0.01,
        done: step === 4,
      })),
    );
    const full: EpisodeTrajectory = {
      type: 'episode-trajectory',
      episodeId: 'traj-1',
      label: 'malicious',
      partial: false,
      failureReason: null,
      modelVersion: 'v1',
      totalReward: 1.92,
      startedAt: 1,
      endedAt: 2,
      steps,
    };
    const partial: EpisodeTrajectory = {
      ...full,
      episodeId: 'traj-2',
      partial: true,
      failureReason: 'stage 2: sandbox-crash',
      steps: steps.slice(0, 5),
    };
    t.is(await writer.write([full, partial]), 'persisted');
    const stored = await db.pool.query(
      'SELECT stage, step, state, action, done FROM trajectories WHERE episode_id = $1 ORDER BY stage, step',
      ['traj-1'],
    );
    t.is(stored.rows.length, 10);
    t.deepEqual(stored.rows[9], { stage: 2, step: 4, state: [0.8, 2], action: 3, done: true });
    // Each state is stored once; the view gives every transition its next state: the next
    // step's in the same stage, its own at the stage's end.
    const transitions = await db.pool.query(
      'SELECT stage, step, next_state FROM trajectory_transitions WHERE episode_id = $1 ORDER BY stage, step',
      ['traj-1'],
    );
    t.deepEqual(
      transitions.rows.map((r) => r.next_state),
      [1, 2].flatMap((stage) => [1, 2, 3, 4, 4].map((next) => [next / 5, stage])),
    );
    const rows = await db.pool.query(
      `SELECT stage, dim, cardinality(states) AS "values" FROM trajectory_stages
        WHERE episode_id = $1 ORDER BY stage`,
      ['traj-1'],
    );
    t.deepEqual(
      rows.rows,
      [
        { stage: 1, dim: 2, values: 10 },
        { stage: 2, dim: 2, values: 10 },
      ],
      'one row per stage, each state once',
    );
    const ep = await db.pool.query(
      'SELECT partial, failure_reason FROM episodes WHERE episode_id = $1',
      ['traj-2'],
    );
    t.deepEqual(ep.rows[0], { partial: true, failure_reason: 'stage 2: sandbox-crash' });
  },
);

test.serial(
  'a trajectory whose states differ in length within a stage is refused alone; the rest of its batch is stored',
  async (t) => {
    const writer = newWriter();
    const outcome = await writer.write([
      stageOneTrajectory('dims-good', [new Float32Array(3), new Float32Array(3)]),
      stageOneTrajectory('dims-bad', [new Float32Array(3), new Float32Array(4)]),
      pattern('dims-pattern'),
    ]);
    t.is(outcome, 'persisted');
    t.is(writer.stats.refused, 1);
    t.is(await countWhere('episodes', `episode_id LIKE 'dims-%'`), 1);
    t.is(await countWhere('trajectories', `episode_id = 'dims-good'`), 2);
    t.is(await count(`pattern_id = 'dims-pattern'`), 1);
  },
);

test.serial(
  'migration 10 moves the trajectories stored a row per step to a row per stage; the views give the same rows',
  async (t) => {
    // A database at migration 9, with steps as earlier versions stored them: one with its
    // next_state (before migration 7), the others without.
    await db.pool.query('CREATE DATABASE warden_at_9');
    const url = new URL(db.server.url);
    url.pathname = '/warden_at_9';
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      t.deepEqual(await migrate(client, 9), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await client.query(
        `INSERT INTO episodes (episode_id, label, partial, model_version, total_reward, transitions, started_at, ended_at)
         VALUES ('old-1', 'benign', false, 'v0', 0, 4, now(), now())`,
      );
      await client.query(
        `INSERT INTO trajectories (episode_id, stage, step, state, action, reward, next_state, done) VALUES
           ('old-1', 1, 1, '{0.2,0.3}', 0, -0.01, NULL, false),
           ('old-1', 1, 0, '{0.1,0.2}', 0, -0.01, '{0.2,0.3}', false),
           ('old-1', 1, 2, '{0.4,0.5}', 3, 1, NULL, true),
           ('old-1', 2, 0, '{0.6,0.7}', 5, 0.5, NULL, true)`,
      );
      const read = async () => ({
        steps: (
          await client.query(
            'SELECT stage, step, state, action, reward, done FROM trajectories ORDER BY stage, step',
          )
        ).rows,
        transitions: (
          await client.query(
            'SELECT stage, step, next_state FROM trajectory_transitions ORDER BY stage, step',
          )
        ).rows,
      });
      const before = await read();
      t.deepEqual(await migrate(client, 10), [10]);
      const after = await read();
      t.deepEqual(after, before, 'the same steps and transitions, read the same way');
      t.deepEqual(
        after.transitions.map((r) => r.next_state),
        [
          [0.2, 0.3],
          [0.4, 0.5],
          [0.4, 0.5],
          [0.6, 0.7],
        ],
      );
      const { rows } = await client.query(
        'SELECT stage, dim, steps, states, actions, dones FROM trajectory_stages ORDER BY stage',
      );
      t.deepEqual(rows[0], {
        stage: 1,
        dim: 2,
        steps: [0, 1, 2],
        states: [0.1, 0.2, 0.2, 0.3, 0.4, 0.5],
        actions: [0, 0, 3],
        dones: [false, false, true],
      });
      t.is(rows.length, 2);
    } finally {
      await client.end();
      await db.pool.query('DROP DATABASE warden_at_9');
    }
  },
);

test.serial(
  'property 26: the server stops mid-stream — rows are queued, then replayed in order, each present exactly once',
  async (t) => {
    const writer = newWriter(1 << 24, { batchRows: 100 });
    const outcomes: string[] = [];
    for (let b = 0; b < 30; b++) {
      if (b === 10) await db.server.pause();
      if (b === 20) await db.server.resume();
      outcomes.push(
        await writer.write(Array.from({ length: 20 }, (_, i) => pattern(`outage-${b}-${i}`))),
      );
    }
    t.deepEqual(outcomes.slice(0, 10), Array(10).fill('persisted'));
    t.true(outcomes.slice(10, 20).every((o) => o === 'queued'));
    t.true(
      outcomes.slice(20).every((o) => o === 'queued'),
      'until a replay has reached the database again, rows queue',
    );
    t.true(writer.journalBytes > 0);
    await writer.retry();
    t.is(writer.journalBytes, 0, 'the journal drained');
    t.is(await count(`pattern_id LIKE 'outage-%'`), 600);
    t.is(await writer.write([pattern('after-outage')]), 'persisted', 'back to direct writes');
  },
);

test.serial(
  'the db-writer actor replays queued rows soon after an outage ends, with backoff, not only every database.retryMs',
  async (t) => {
    const system = new ActorSystem({
      config: testConfig({
        runtime: { placement: { io: ['db-writer'] } },
        // An hour between retries at most: rows stored within the wait below came from the
        // backoff's early retries (1 s, 2 s, 4 s, …), not from the period.
        database: {
          url: db.server.url,
          journalDir: tempDir('warden-journal-'),
          retryMs: 3_600_000,
        },
      }),
    });
    await system.start();
    // What an operator sees: the DB writer's rows by outcome on the metrics endpoint.
    const metrics = metricsRegistry(system);
    const rows = async (outcome: string) =>
      Number(
        new RegExp(`^warden_db_rows\\{outcome="${outcome}"\\} (\\S+)$`, 'm').exec(
          await metrics.scrape(),
        )?.[1] ?? Number.NaN,
      );
    const queued = () => rows('queued');
    const writerStats = async () =>
      (await system.stats()).threads.flatMap((th) => th.actors).find((a) => a.actor === 'db-writer')
        ?.custom;
    try {
      await db.server.pause();
      try {
        for (let i = 0; i < 20; i++) system.send('db-writer', pattern(`blip-${i}`));
        t.true(await until(async () => (await queued()) === 20), 'the rows went to the journal');
        t.regex(
          databaseTrouble(await writerStats()),
          /^ {2}database: \d+\.\d MiB queued in the journal$/,
          'the progress line of warden start says so',
        );
      } finally {
        await db.server.resume();
      }
      const back = Date.now();
      t.true(
        await until(async () => (await count(`pattern_id LIKE 'blip-%'`)) === 20, 20_000),
        'stored by an early retry',
      );
      t.log(`stored ${Date.now() - back} ms after the database was back`);
      t.is(await rows('replayed'), 20, 'counted as stored from the journal');
      t.is(await rows('refused'), 0);
      t.is(databaseTrouble(await writerStats()), '', 'and says nothing once all is stored');
    } finally {
      await system.stop();
    }
  },
);

test.serial(
  'a journal line damaged on disk is skipped and counted; the queued rows around it are stored',
  async (t) => {
    const dir = journalDir();
    const journal = new Journal<DbRecord>(dir, 1 << 20);
    journal.append([pattern('damaged-before')]);
    appendFileSync(join(dir, 'journal.log'), '{"type":"attack-pattern","patt\n');
    journal.close();
    const reopened = new Journal<DbRecord>(dir, 1 << 20);
    reopened.append([pattern('damaged-after')]);
    const writer = new DbWriter(db.pool, reopened, silentLogger);
    await writer.retry();
    t.is(await count(`pattern_id LIKE 'damaged-%'`), 2);
    t.is(writer.stats.refused, 1, 'the damaged line is counted');
    t.is(writer.journalBytes, 0, 'and the replay moved past it');
    t.is(await writer.write([pattern('damaged-later')]), 'persisted', 'back to direct writes');
    reopened.close();
  },
);

test.serial(
  'once a replay has stored a batch, new rows go straight to the database while the rest of the journal replays beside them',
  async (t) => {
    // A backlog of 400 rows replayed two at a time: the replay runs for a while.
    const journal = new Journal<DbRecord>(journalDir(), 1 << 22);
    for (let i = 0; i < 400; i++) journal.append([pattern(`beside-${i}`)]);
    const writer = new DbWriter(db.pool, journal, silentLogger, { batchRows: 2 });
    await db.server.pause();
    try {
      t.is(await writer.write([pattern('beside-away')]), 'queued', 'the database is away');
    } finally {
      await db.server.resume();
    }
    t.is(await writer.write([pattern('beside-early')]), 'queued', 'taken for away until a replay');
    const replay = writer.retry();
    t.true(await until(async () => writer.stats.replayed > 0, 20_000));
    // Before, rows that came during a replay queued behind it, and each paid a journal write and
    // read on top of its insert: on a busy machine the backlog never drained.
    const late = await Promise.all(
      Array.from({ length: 10 }, (_, i) => writer.write([pattern(`beside-late-${i}`)])),
    );
    const pendingThen = writer.journalBytes;
    await replay;
    t.deepEqual(late, Array(10).fill('persisted'));
    t.true(pendingThen > 0, 'the journal still held rows while they were stored');
    t.is(await count(`pattern_id LIKE 'beside-%'`), 412, 'each row once');
    t.is(writer.journalBytes, 0, 'the journal emptied');
    t.is(writer.stats.replayed, 402);
    t.is(writer.stats.persisted, 10);
    journal.close();
  },
);

test.serial(
  'stopping during a journal replay: the replay ends after its batch, nothing is lost or read after the journal closes',
  async (t) => {
    const dir = journalDir();
    const journal = new Journal<DbRecord>(dir, 1 << 22);
    for (let i = 0; i < 40; i++) journal.append([pattern(`stop-replay-${i}`)]);
    const writer = new DbWriter(db.pool, journal, silentLogger, { batchRows: 1 });
    const replay = writer.retry();
    t.is(await writer.settle(10_000), 0, 'nothing was in flight');
    journal.close();
    await t.notThrowsAsync(replay, 'the replay did not touch the closed journal');
    const stored = await count(`pattern_id LIKE 'stop-replay-%'`);
    t.true(stored < 40, `the replay stopped early (${stored} stored)`);
    const reopened = new Journal<DbRecord>(dir, 1 << 22);
    t.is(reopened.pending(100).values.length, 40 - stored, 'the rest waits in the journal');
    reopened.close();
  },
);

test.serial(
  'a trajectory written during an outage keeps its states: Float32Array steps survive the JSON journal',
  async (t) => {
    const writer = newWriter();
    const states = [0, 1, 2].map((step) => Float32Array.from([step / 3, 0.1, 1]));
    const trajectory: EpisodeTrajectory = {
      type: 'episode-trajectory',
      episodeId: 'journaled-f32',
      label: 'malicious',
      partial: false,
      failureReason: null,
      modelVersion: 'v1',
      totalReward: 1,
      startedAt: 1,
      endedAt: 2,
      steps: states.map((state, step) => ({
        stage: 1 as const,
        step,
        state,
        action: step === 2 ? (2 as const) : (0 as const),
        reward: step === 2 ? 1 : 0,
        done: step === 2,
      })),
    };
    await db.server.pause();
    try {
      t.is(await writer.write([trajectory]), 'queued');
    } finally {
      await db.server.resume();
    }
    await writer.retry();
    const stored = await db.pool.query(
      'SELECT state FROM trajectories WHERE episode_id = $1 ORDER BY step',
      ['journaled-f32'],
    );
    // real[] comes back as the shortest decimal of each float4: the same float32 values.
    t.deepEqual(
      stored.rows.map((r) => (r.state as number[]).map(Math.fround)),
      states.map((s) => Array.from(s)),
    );
  },
);

test.serial(
  'an episode id already stored for another run (a sandbox reusing its ids) is stored beside it as <id>#<start ms>, counted; the same run written again is stored once; a run stored partial at a stop takes the stages of its completion',
  async (t) => {
    const writer = newWriter();
    const first = stageOneTrajectory('reused-1', [[0], [1]]);
    // The sandbox restarted and numbers its episodes from 1 again: another file, another start.
    const second = {
      ...stageOneTrajectory('reused-1', [[5], [6], [7]]),
      startedAt: 86_400_000,
      endedAt: 86_400_100,
    };
    // Each run's learned pattern is stored at its outcome, before its trajectory.
    const learned = (id: string, timestamp: number) =>
      pattern(id, { episodeId: 'reused-1', timestamp });
    t.is(await writer.write([learned('reused-1-a', 2), first]), 'persisted');
    t.is(await writer.write([learned('reused-1-b', 86_400_050)]), 'persisted');
    t.is(await writer.write([second]), 'persisted');
    t.is(await writer.write([second]), 'persisted', 'written again (a journal replay)');
    // Two more runs under one id in one batch.
    const third = { ...stageOneTrajectory('reused-2', [[1]]), startedAt: 10, endedAt: 11 };
    const fourth = { ...stageOneTrajectory('reused-2', [[2]]), startedAt: 20, endedAt: 21 };
    t.is(await writer.write([third, fourth, third]), 'persisted');
    const rows = await db.pool.query(
      `SELECT e.episode_id AS id, cardinality(s.steps) AS steps
         FROM episodes e JOIN trajectory_stages s USING (episode_id)
        WHERE e.episode_id LIKE 'reused-%' ORDER BY e.episode_id`,
    );
    t.deepEqual(
      rows.rows.map((r) => `${r.id} ${r.steps}`),
      ['reused-1 2', 'reused-1#86400000 3', 'reused-2 1', 'reused-2#20 1'],
    );
    t.is(writer.stats.renamed, 2);
    const patterns = await db.pool.query(
      `SELECT pattern_id AS id, episode_id AS episode FROM attack_patterns
        WHERE pattern_id LIKE 'reused-1-%' ORDER BY pattern_id`,
    );
    t.deepEqual(
      patterns.rows.map((r) => `${r.id} ${r.episode}`),
      ['reused-1-a reused-1', 'reused-1-b reused-1#86400000'],
      "each run's pattern names the episode as stored",
    );

    // Warden stopped with a file in stage 2 (stored partial: stage 1 whole, stage 2 begun); the
    // sandbox sent stage 2 again from its start to the next Warden, which saw it through: its
    // whole stage 2 replaces the part, and stage 1 stays.
    const stage2 = (states: number[][]) =>
      states.map((state, step) => ({
        stage: 2 as const,
        step,
        state,
        action: 0 as const,
        reward: 1,
        done: step === states.length - 1,
      }));
    const first1 = stageOneTrajectory('resumed-1', [[0], [1]]);
    const part = {
      ...first1,
      artifactHash: 'sha-1',
      partial: true,
      failureReason: 'unfinished at shutdown',
      totalReward: 1,
      steps: [...first1.steps, ...stage2([[5]])],
    };
    const whole = {
      ...stageOneTrajectory('resumed-1', []),
      artifactHash: 'sha-1',
      startedAt: 50,
      endedAt: 60,
      totalReward: 3,
      steps: stage2([[5], [6], [7]]),
    };
    t.is(await writer.write([part]), 'persisted');
    t.is(await writer.write([whole]), 'persisted');
    t.is(await writer.write([whole]), 'persisted', 'written again (a journal replay)');
    const resumed = await db.pool.query(
      `SELECT e.episode_id AS id, e.partial, e.transitions, e.total_reward, s.stage,
              cardinality(s.steps) AS steps
         FROM episodes e JOIN trajectory_stages s USING (episode_id)
        WHERE e.episode_id LIKE 'resumed-%' ORDER BY s.stage`,
    );
    t.deepEqual(
      resumed.rows.map(
        (r) => `${r.id} ${r.partial} ${r.transitions} ${r.total_reward} ${r.stage}:${r.steps}`,
      ),
      ['resumed-1 false 5 3 1:2', 'resumed-1 false 5 3 2:3'],
    );
    t.is(writer.stats.renamed, 2, 'not a rename');
  },
);

test.serial(
  'stopping while a write is stuck: its rows go to the journal, and the next start stores them exactly once',
  async (t) => {
    const dir = journalDir();
    const trajectory = (id: string) => stageOneTrajectory(id, [[0], [1], [2]]);
    // Another session holds the episodes table: the writer's INSERT waits on it.
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE episodes IN ACCESS EXCLUSIVE MODE');
      const journal = new Journal<DbRecord>(dir, 1 << 20);
      const writer = new DbWriter(db.pool, journal, silentLogger);
      await writer.submit([trajectory('stuck-1'), trajectory('stuck-2')]);
      t.is(await writer.settle(200), 2, 'the two episodes still being written are journaled');
      journal.close();
      // The process ends before the write commits: its connection is cut, the write rolls back.
      await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO episodes%'`,
      );
      await writer.drained();
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    t.is(await countWhere('episodes', `episode_id LIKE 'stuck-%'`), 0, 'nothing was written');
    // The next start replays the journal.
    const next = new DbWriter(db.pool, new Journal<DbRecord>(dir, 1 << 20), silentLogger);
    await next.retry();
    t.is(await countWhere('episodes', `episode_id LIKE 'stuck-%'`), 2);
    t.is(await countWhere('trajectories', `episode_id LIKE 'stuck-%'`), 6, 'every step once');
  },
);

test.serial(
  'SIGKILL of the writer process during an outage: after a restart every acknowledged row is present exactly once',
  async (t) => {
    const dir = journalDir();
    await db.server.pause();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        new URL('../fixtures/workers/journal-writer.ts', import.meta.url).pathname,
        db.server.url,
        dir,
        'kill',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const acknowledged: number[] = [];
    await new Promise<void>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const [outcome, batch] = line.split(' ');
        if (outcome === 'queued') acknowledged.push(Number(batch));
        if (acknowledged.length === 20) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    await db.server.resume();
    const writer = new DbWriter(db.pool, new Journal<DbRecord>(dir, 1 << 28), silentLogger);
    await writer.retry();
    await writer.retry(); // a second replay must not duplicate anything
    for (const b of acknowledged)
      t.is(await count('pattern_id LIKE $1', [`kill-${b}-%`]), 50, `batch ${b}`);
    const total = await count(`pattern_id LIKE 'kill-%'`);
    t.true(
      total >= acknowledged.length * 50 && total % 50 === 0,
      `${total} rows: whole batches only`,
    );
  },
);

test.serial('hostile strings in patterns are stored as data', async (t) => {
  const writer = newWriter();
  const hostile = `x'); DROP TABLE attack_patterns; --\u0000\u202e$$`;
  const safe = hostile.replaceAll('\u0000', '');
  t.is(
    await writer.write([pattern('hostile', { attackType: safe, episodeId: safe })]),
    'persisted',
  );
  const [row] = await byAttackType(db.pool, safe);
  t.is(row?.attackType, safe);
  t.true((await count()) > 0, 'the table is still there');
});

test.serial(
  'the sanitiser hashes file paths and IP addresses in stored text; equal values hash alike',
  async (t) => {
    const writer = newWriter(1 << 20, {
      batchRows: 100,
      sanitize: makeSanitizer({ paths: true, ips: true, key: 'k' }),
    });
    const reason =
      'stage 2: sandbox-crash after C:\\Users\\bob\\AppData\\evil.exe wrote /tmp/x/y.bin and called 10.1.2.3 and fe80::1:2:3:4';
    const traj: EpisodeTrajectory = {
      type: 'episode-trajectory',
      episodeId: 'san-1',
      label: 'malicious',
      partial: true,
      failureReason: reason,
      modelVersion: 'v1',
      totalReward: 0,
      startedAt: 1,
      endedAt: 2,
      steps: [],
    };
    t.is(await writer.write([traj, { ...traj, episodeId: 'san-2' }]), 'persisted');
    const { rows } = await db.pool.query(
      'SELECT failure_reason AS r FROM episodes WHERE episode_id IN ($1, $2) ORDER BY episode_id',
      ['san-1', 'san-2'],
    );
    const stored = rows[0].r as string;
    for (const secret of ['bob', 'evil.exe', '/tmp/x', '10.1.2.3', 'fe80'])
      t.false(stored.includes(secret), `${secret} does not reach the database`);
    t.regex(
      stored,
      /^stage 2: sandbox-crash after path:[0-9a-f]{16} wrote path:[0-9a-f]{16} and called ip:[0-9a-f]{16} and ip:[0-9a-f]{16}$/,
    );
    t.is(rows[1].r, stored, 'the same value hashes to the same pseudonym');
  },
);

test.serial(
  "a pattern's confidence moves with the agreement of later similar outcomes, once per outcome",
  async (t) => {
    const writer = newWriter();
    const near = [0.9, 0.1, 0.9, 0.1];
    const at = (m: number) => Date.UTC(2026, 6, 1, 0, m);
    const a = pattern('agree-a', {
      features: near,
      attackType: 'Emotet',
      confidence: 0.5,
      timestamp: at(0),
    });
    const b = pattern('agree-b', {
      features: [0.91, 0.1, 0.9, 0.1],
      attackType: 'Emotet',
      confidence: 0.5,
      timestamp: at(1),
    });
    const c = pattern('agree-c', {
      features: [0.9, 0.12, 0.9, 0.1],
      attackType: 'QakBot',
      confidence: 0.5,
      timestamp: at(2),
    });
    const far = pattern('agree-far', {
      features: [0.0, 0.9, 0.0, 0.9],
      attackType: 'Emotet',
      confidence: 0.5,
      timestamp: at(3),
    });
    const conf = async (id: string) =>
      Number(
        (await db.pool.query('SELECT confidence FROM attack_patterns WHERE pattern_id = $1', [id]))
          .rows[0].confidence,
      );
    const write = async (rows: AttackPattern[]) => {
      const outcome = await writer.write(rows);
      while ((await writer.corroborate()) > 0); // the actor runs this every 100 ms
      return outcome;
    };
    t.is(await write([a]), 'persisted');
    t.is(await conf('agree-a'), 0.5, "alone: the policy's confidence");
    t.is(await write([b]), 'persisted');
    t.true(
      Math.abs((await conf('agree-a')) - 2 / 3) < 1e-6,
      'a later similar outcome of the same type: (2·0.5 + 1) / 3',
    );
    t.is(await write([c, far]), 'persisted');
    t.true(
      Math.abs((await conf('agree-a')) - 0.5) < 1e-6,
      'then one of another type: (2·0.5 + 1) / 4',
    );
    t.true(Math.abs((await conf('agree-b')) - 1 / 3) < 1e-6, 'b: one disagreement, (2·0.5) / 3');
    t.is(await conf('agree-c'), 0.5, 'the newest has no later outcomes yet');
    // A replayed batch (journal) adds nothing twice.
    t.is(await write([c, far]), 'persisted');
    t.true(Math.abs((await conf('agree-a')) - 0.5) < 1e-6);
    const [row] = (
      await db.pool.query(
        "SELECT agreements, disagreements FROM attack_patterns WHERE pattern_id = 'agree-a'",
      )
    ).rows;
    t.deepEqual(row, { agreements: 1, disagreements: 1 });
  },
);
