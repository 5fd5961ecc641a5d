// History retention on a real PostgreSQL (`warden db prune`): episodes that ended before the
// cutoff go with their trajectories, in batches; newer ones, attack patterns and experiences a
// consumer has not read yet stay; a dry run only counts.

import { spawnSync } from 'node:child_process';
import test from 'ava';
import { parseAge, pruneHistory } from '../../src/db/prune.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';

let db: TestDatabase;
test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  await db?.stop();
});

const DAY = 86_400_000;
const BIN = new URL('../../bin/warden.js', import.meta.url).pathname;

async function seed(now: number): Promise<void> {
  const q = (sql: string, params: unknown[]) => db.pool.query(sql, params);
  for (let i = 0; i < 30; i++) {
    const ended = new Date(now - (i < 20 ? 40 : 1) * DAY);
    await q(
      `INSERT INTO episodes (episode_id, label, partial, model_version, total_reward, transitions, started_at, ended_at)
       VALUES ($1, 'malicious', false, 'v1', 1, 5, $2, $2)`,
      [`ep-${i}`, ended],
    );
    await q(
      `INSERT INTO trajectory_stages (episode_id, stage, dim, steps, states, actions, rewards, dones)
       VALUES ($1, 1, 1, '{0,1,2,3,4}', '{0.5,0.5,0.5,0.5,0.5}', '{0,0,0,0,0}', '{0,0,0,0,0}',
               '{f,f,f,f,t}')`,
      [`ep-${i}`],
    );
  }
  await q(
    `INSERT INTO attack_patterns (pattern_id, features, action, reward, attack_type, confidence, created_at, model_version, episode_id, stage)
     SELECT 'p-old', cube(ARRAY[0.1, 0.2]), 2, 1, 'injection', 0.9, $1, 'v1', 'ep-0', 1`,
    [new Date(now - 40 * DAY)],
  );
  const ids: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await q(
      `INSERT INTO experiences (host_id, episode_id, stage, step, model_version, decided_at, state, action, reward, next_state, done, created_at)
       VALUES ('h1', $1, 1, 0, 'v1', $2, '{0.5}', 0, 0, '{0.5}', true, $2) RETURNING id`,
      [`x-${i}`, new Date(now - 40 * DAY)],
    );
    ids.push(Number(r.rows[0].id));
  }
  // The learner has read the first six.
  await q('INSERT INTO consumer_cursors (consumer, last_id) VALUES ($1, $2)', ['learner', ids[5]]);
}

const counts = async () => {
  const n = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
  return {
    episodes: await n('SELECT count(*) AS n FROM episodes'),
    steps: await n('SELECT count(*) AS n FROM trajectories'),
    patterns: await n('SELECT count(*) AS n FROM attack_patterns'),
    experiences: await n('SELECT count(*) AS n FROM experiences'),
  };
};

test.serial(
  'prune deletes old episodes with their steps, keeps recent ones, patterns and unread experiences',
  async (t) => {
    const now = Date.now();
    await seed(now);
    const before = now - 30 * DAY;

    const dry = await pruneHistory(db.pool, { before, dryRun: true });
    t.like(dry, { episodes: 20, trajectorySteps: 100, experiences: 6 });
    t.deepEqual(await counts(), { episodes: 30, steps: 150, patterns: 1, experiences: 10 });

    // The command as an operator runs it, against this database.
    const cli = spawnSync(
      process.execPath,
      [BIN, 'db', 'prune', '--older-than', '30d', '--dry-run'],
      {
        env: { ...process.env, DATABASE_URL: db.server.url, WARDEN_LOG_LEVEL: 'silent' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    t.is(cli.status, 0, cli.stderr);
    t.regex(
      cli.stdout,
      /^would delete 20 episode\(s\) that ended before .*, 100 trajectory step\(s\) and 6 shared/,
    );
    t.is((await counts()).episodes, 30);

    const done = await pruneHistory(db.pool, { before, batchEpisodes: 7 });
    t.like(done, { episodes: 20, trajectorySteps: 100, experiences: 6 });
    t.deepEqual(await counts(), { episodes: 10, steps: 50, patterns: 1, experiences: 4 });
    const left = await db.pool.query('SELECT min(ended_at) AS oldest FROM episodes');
    t.true(left.rows[0].oldest.getTime() >= before, 'only episodes newer than the cutoff remain');

    t.like(await pruneHistory(db.pool, { before }), { episodes: 0, trajectorySteps: 0 });
  },
);

test('ages read as a number and a unit; anything else is a clear error', (t) => {
  t.is(parseAge('30d'), 30 * DAY);
  t.is(parseAge('12h'), 12 * 3_600_000);
  t.is(parseAge('1.5m'), 90_000);
  t.throws(() => parseAge('30'), { message: /not an age.*30d/ });
  t.throws(() => parseAge('-3d'), { message: /not an age/ });
  t.throws(() => parseAge('99999999d'), { message: /older than any history: at most 36500d/ });
  t.is(parseAge('36500d'), 36_500 * DAY);
});
