// The learner's cursor over the shared experiences table (property 30) on a real PostgreSQL:
// writers commit out of id order (slow and fast transactions interleaved) while a reader polls;
// every row is read exactly once and in id order, across a reader "restart", and a replayed
// batch (journal) never duplicates.

import test from 'ava';
import {
  type ConsumedRow,
  consumeExperiences,
  type ExperienceRow,
  insertExperiences,
} from '../../src/cluster/experiences.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';

let db: TestDatabase;
test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  await db?.stop();
});

const row = (hostId: string, episodeId: string, step: number): ExperienceRow => ({
  hostId,
  episodeId,
  stage: 1,
  step,
  modelVersion: 'v1',
  decidedAt: Date.now(),
  state: [0.1, 0.2],
  action: 0,
  reward: -0.01,
  nextState: [0.2, 0.3],
  done: false,
});

test.serial('rows committed out of id order are neither skipped nor read twice', async (t) => {
  const seen: ConsumedRow[] = [];
  let writing = true;
  const writer = async (host: string) => {
    for (let e = 0; e < 25; e++) {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await insertExperiences(
          client,
          [0, 1, 2].map((s) => row(host, `ep-${e}`, s)),
        );
        // A slow transaction holds its (lower) ids while faster ones commit higher ones.
        await new Promise((r) => setTimeout(r, (e * 7 + host.length * 13) % 23));
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }
  };
  const reader = async (consumer: string) => {
    while (writing) {
      await consumeExperiences(db.pool, consumer, 16, (rows) => {
        seen.push(...rows);
      });
      await new Promise((r) => setTimeout(r, 3));
    }
  };
  const reading = reader('learner-a');
  await Promise.all(['host-a', 'host-bb', 'host-ccc'].map(writer));
  writing = false;
  await reading;
  // drain what is left, as a restarted reader would
  while (
    (await consumeExperiences(db.pool, 'learner-a', 1000, (rows) => void seen.push(...rows))) > 0
  );

  const all = (await db.pool.query('SELECT id FROM experiences ORDER BY id')).rows.map((r) =>
    Number(r.id),
  );
  t.is(all.length, 3 * 25 * 3);
  t.deepEqual(
    seen.map((r) => r.id),
    all,
    'every row exactly once, in id order',
  );
  const cursor = (
    await db.pool.query(
      "SELECT last_id, consumed FROM consumer_cursors WHERE consumer = 'learner-a'",
    )
  ).rows[0];
  t.is(Number(cursor.last_id), all.at(-1)!);
  t.is(Number(cursor.consumed), all.length);
});

test.serial('a failed apply moves nothing; a replayed batch never duplicates', async (t) => {
  await t.throwsAsync(
    consumeExperiences(db.pool, 'learner-b', 10, () => {
      throw new Error('replay full');
    }),
  );
  const cursor = await db.pool.query(
    "SELECT last_id FROM consumer_cursors WHERE consumer = 'learner-b'",
  );
  t.is(cursor.rows.length, 0, 'the cursor row itself was rolled back');
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    t.is(await insertExperiences(client, [row('host-a', 'ep-0', 0)]), 0, 'already stored');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
});
