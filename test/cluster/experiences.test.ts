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
  sampleHistory,
} from '../../src/cluster/experiences.ts';
import { ReplayStorage } from '../../src/runtime/shared/replay-storage.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { testConfig, until } from '../helpers.ts';

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

test.serial('rehearsal draws older rows uniformly from the history before a point', async (t) => {
  const all = (await db.pool.query('SELECT id FROM experiences ORDER BY id')).rows.map((r) =>
    Number(r.id),
  );
  const maxId = all[Math.floor(all.length * 0.6)]!;
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const drawn = await sampleHistory(db.pool, 3_000, maxId, random);
  t.true(drawn.length > 2_500, `${drawn.length} of 3000 (ids have no gaps here)`);
  t.true(
    drawn.every((r) => r.id >= all[0]! && r.id <= maxId),
    'only history before the point',
  );
  const mid = (all[0]! + maxId) / 2;
  const low = drawn.filter((r) => r.id <= mid).length / drawn.length;
  t.true(low > 0.45 && low < 0.55, `uniform: ${low.toFixed(3)} in the lower half`);
  t.is(drawn[0]!.state.length, 2);
  t.deepEqual(await sampleHistory(db.pool, 10, 0), []);
});

test.serial(
  'a failed apply moves nothing; a replayed batch never duplicates; a reused episode id keeps both runs',
  async (t) => {
    await t.throwsAsync(
      consumeExperiences(db.pool, 'learner-b', 10, () => {
        throw new Error('replay full');
      }),
    );
    const cursor = await db.pool.query(
      "SELECT last_id FROM consumer_cursors WHERE consumer = 'learner-b'",
    );
    t.is(cursor.rows.length, 0, 'the cursor row itself was rolled back');
    const insert = async (rows: ExperienceRow[]) => {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        const n = await insertExperiences(client, rows);
        await client.query('COMMIT');
        return n;
      } finally {
        client.release();
      }
    };
    const first = { ...row('host-r', 'reused', 0), decidedAt: Date.UTC(2026, 0, 1) };
    t.is(await insert([first, { ...first, step: 1 }]), 2);
    t.is(await insert([first, { ...first, step: 1 }]), 0, 'already stored: a journal replay');
    // The sandbox restarted and numbers its episodes from 1 again: another run, the same steps.
    const again = { ...first, decidedAt: Date.UTC(2026, 0, 2) };
    t.is(await insert([again, { ...again, step: 1 }]), 2, "another run's steps are kept");
  },
);

test.serial(
  'the experience feed on its thread appends new rows and a share of older ones to the replay',
  async (t) => {
    const buffer = ReplayStorage.create({ capacity: 10_000, dim: 2 }).buffer;
    const system = new ActorSystem({
      config: testConfig({
        runtime: { placement: { learner: ['experience-feed'] } },
        database: { url: db.server.url },
        cluster: { pollMs: 20 },
        replay: { keepOldShare: 0.25 },
        telemetry: { stateDim: 32 },
      }),
      shared: { replay: buffer },
    });
    const replay = new ReplayStorage(buffer);
    await system.start();
    const feed = async () =>
      (await system.stats()).threads
        .flatMap((th) => th.actors)
        .find((a) => a.actor === 'experience-feed')!.custom;
    try {
      const [{ n }] = (await db.pool.query('SELECT count(*)::int AS n FROM experiences')).rows;
      t.true(await until(async () => (await feed()).consumed === n), 'the history is read first');
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await insertExperiences(
          client,
          Array.from({ length: 300 }, (_, i) =>
            row('host-new', `new-${Math.floor(i / 10)}`, i % 10),
          ),
        );
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      // The older rows are drawn after the new ones are counted: wait for both.
      t.true(await until(async () => (await feed()).consumed === n + 300));
      await until(async () => ((await feed()).rehearsed ?? 0) > 0);
      const s = await feed();
      t.true(
        s.rehearsed! >= 80 && s.rehearsed! <= 100,
        `≈ 300 × 0.25 / 0.75 = 100 older rows, got ${s.rehearsed}`,
      );
      t.is(
        replay.written,
        s.consumed! + s.rehearsed!,
        'everything read or rehearsed is in the replay',
      );
    } finally {
      await system.stop();
    }
  },
);
