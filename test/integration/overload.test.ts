// More coming in than Warden can handle: a sandbox streaming faster than events are decided,
// a thread after the adapter that stalls, episodes opened and never ended, a database slower than
// rows arrive. Each is held to a bound
// and every event or row stays accounted for — nothing queues without limit and nothing is dropped
// at a full mailbox. Real gRPC on 127.0.0.1, real worker threads, a real PostgreSQL.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { ACTOR_MODULES } from '../../src/actors/index.ts';
import { importCsv } from '../../src/data/import-csv.ts';
import type { RecordedTrace } from '../../src/messages/recorded.ts';
import type { EpisodeTrajectory } from '../../src/messages/trajectory.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { ReferenceSandbox } from '../../src/sandbox/reference-sandbox.ts';
import { systemAdmin } from '../../src/services/system-admin.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import {
  actorStats,
  attackPattern,
  episodeStarted,
  everyMessageArrived,
  fixtureActor,
  Inbox,
  sandboxesAt,
  testConfig,
  until,
} from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const DATA = new URL('../../data/oliveira-balanced/', import.meta.url).pathname;
let traces: RecordedTrace[];
let db: TestDatabase;
test.before(async () => {
  const names = JSON.parse(readFileSync(join(DATA, 'api_names.json'), 'utf8'));
  traces = importCsv(join(DATA, 'api_calls.csv'), { names }).traces;
  db = await startTestDatabase();
});
test.after.always(async () => {
  await db?.stop();
});

/** A reference sandbox replaying traces [from, to) of the bundled data, `concurrency` at a time. */
const replaying = (name: string, from: number, to: number, concurrency: number) =>
  new ReferenceSandbox({
    name,
    traces: traces.slice(from, to),
    benign: traces.filter((x) => x.episode.label === 'benign').slice(0, 10),
    episodes: to - from,
    concurrency,
    log: silentLogger,
  });

test.serial(
  'a sandbox streaming faster than Warden decides is held back: its events in flight stay within telemetry.intakeWindow, every one is accounted for, and a calm sandbox beside it finishes',
  async (t) => {
    const window = 500;
    // 400 episodes at once, streamed as fast as the stream takes them: far more than the window.
    const flood = replaying('flood', 0, 400, 400);
    const calm = replaying('calm', 400, 410, 2);
    const sandboxes = [flood, calm];
    const ports = await Promise.all(sandboxes.map((s) => s.start()));
    const system = new ActorSystem({
      config: testConfig({
        runtime: {
          placement: { io: ['receiver', 'dispatcher'], hot: ['adapter'], control: ['episodes'] },
        },
        telemetry: { intakeWindow: window },
        sandboxes: sandboxesAt(sandboxes, ports),
        models: { dir: tempDir('warden-overload-models-') },
      }),
    });
    await system.start();
    try {
      t.true(await until(async () => calm.done, 60_000), 'the calm sandbox finished');
      t.true(await until(async () => flood.done, 120_000), 'the flooding sandbox finished');
      t.true(
        await until(async () => (await actorStats(system)).episodes?.completed === 410, 15_000),
        'all 410 episodes closed',
      );
      const s = await actorStats(system);
      const held = s['receiver:flood']!;
      t.log(
        `flood: ${flood.stats.eventsSent} events, at most ${held.inFlightMax} in flight, ${held.pauses} pauses (${held.pausedMs} ms), the sandbox's writes held ${flood.stats.writesHeld} times`,
      );
      t.true(held.pauses! >= 1, 'the receiver stopped reading the flooding stream');
      t.true(
        flood.stats.writesHeld > 0,
        "the sandbox's writes waited: gRPC flow control held it back",
      );
      t.true(
        held.inFlightMax! < window + 32,
        `events in flight ${held.inFlightMax} stayed within the window and one batch of 32`,
      );
      everyMessageArrived(t, s, sandboxes);
      t.is(s.episodes!.partial, 0);
      t.true(
        await until(async () => {
          const now = await actorStats(system);
          return now['receiver:flood']!.inFlight === 0 && now['receiver:calm']!.inFlight === 0;
        }, 10_000),
        `once all is decided, nothing is counted in flight: the adapter finished every event it was handed (${JSON.stringify(
          await (async () => {
            const now = await actorStats(system);
            const { inFlight: flood } = now['receiver:flood']!;
            const { inFlight: calm } = now['receiver:calm']!;
            const { backlog, pending, decisions, resubmitted, poolRestarts } = now.adapter!;
            return { flood, calm, backlog, pending, decisions, resubmitted, poolRestarts };
          })(),
        )})`,
      );
    } finally {
      await system.stop();
      await Promise.all(sandboxes.map((x) => x.stop()));
    }
  },
);

test.serial(
  "a sandbox's maxEventsPerSecond caps what is read from it, from the start or set live, and lifting it live ends a pause at once: the receiver paces its stream to the rate, the sandbox's writes wait, and every event still arrives",
  async (t) => {
    const rate = 2_000;
    const later = 1_500;
    const sandboxes = [
      replaying('capped', 0, 30, 30), // capped from the start
      replaying('later', 30, 60, 30), // capped while it streams
      replaying('released', 60, 90, 30), // 1 event/s, lifted while that holds it paused
    ];
    const [capped] = sandboxes;
    const ports = await Promise.all(sandboxes.map((s) => s.start()));
    const [cappedAt, laterAt, releasedAt] = sandboxesAt(sandboxes, ports);
    let config = testConfig({
      runtime: {
        placement: { io: ['receiver', 'dispatcher'], hot: ['adapter'], control: ['episodes'] },
      },
      sandboxes: [
        { ...cappedAt!, maxEventsPerSecond: rate },
        laterAt!,
        { ...releasedAt!, maxEventsPerSecond: 1 },
      ],
      models: { dir: tempDir('warden-overload-models-') },
    });
    const system = new ActorSystem({ config });
    const started = performance.now();
    await system.start();
    try {
      // Live settings, as a configuration file change or `warden config update` applies them,
      // once the third sandbox is paused by its 1 event/s (a wait of tens of seconds).
      t.true(
        await until(
          async () => ((await actorStats(system))['receiver:released']!.throttles ?? 0) > 0,
        ),
        'the third sandbox is paused at 1 event/s',
      );
      const changed = performance.now();
      config = {
        ...config,
        sandboxes: config.sandboxes.map((s) =>
          s.name === 'later'
            ? { ...s, maxEventsPerSecond: later }
            : s.name === 'released'
              ? { ...s, maxEventsPerSecond: 0 }
              : s,
        ),
      };
      await system.configure(config);
      const atChange = await actorStats(system);
      const before = atChange['receiver:later']!.events!;
      // What a cap allows by any moment: its burst (a tenth of a second's events) and a batch of
      // 64 read before the bucket is checked, plus the rate since it applies. A slower machine
      // reads less, never more.
      const allowed = (cap: number, since: number) =>
        cap / 10 + 64 + (cap * (performance.now() - since)) / 1000;
      let most = 0;
      t.true(
        await until(async () => {
          const s = await actorStats(system);
          most = Math.max(
            most,
            s['receiver:capped']!.events! / allowed(rate, started),
            (s['receiver:later']!.events! - before) / allowed(later, changed),
          );
          return sandboxes.every((x) => x.done);
        }, 60_000),
        'the sandboxes finished',
      );
      // A paced receiver reads the last of what its sandbox wrote after the sandbox is done.
      await until(async () => {
        const s = await actorStats(system);
        return sandboxes.every(
          (x) => s[`receiver:${x.name}`]?.events === x.stats.eventsSent + x.stats.lifecycleSent,
        );
      }, 15_000);
      const elapsed = (performance.now() - started) / 1000;
      const s = await actorStats(system);
      const [c, l, r] = [s['receiver:capped']!, s['receiver:later']!, s['receiver:released']!];
      t.log(
        `capped: ${c.events} events in ${elapsed.toFixed(1)} s (${Math.round(c.events! / elapsed)}/s for a cap of ${rate}/s), ${c.throttles} throttles (${c.throttledMs} ms), the sandbox's writes held ${capped!.stats.writesHeld} times; later: ${before} events before its cap of ${later}/s, ${l.events} in all, ${l.throttles} throttles; released: ${atChange['receiver:released']!.events} events at 1/s, then ${r.events} in all`,
      );
      t.true(most <= 1, `never read more than a cap allows (at most ${most.toFixed(2)} of it)`);
      t.true(c.throttles! >= 1, 'the receiver paused reading to keep to the cap');
      t.true(l.throttles! >= 1, 'the cap set live paced the second sandbox');
      t.like(
        r,
        {
          throttles: atChange['receiver:released']!.throttles,
          throttledMs: atChange['receiver:released']!.throttledMs,
        },
        'the lifted cap ended its pause when it changed, and never paced again',
      );
      t.true(capped!.stats.writesHeld > 0, "the capped sandbox's writes waited (flow control)");
      everyMessageArrived(t, s, sandboxes);
      t.true(
        await until(async () => (await actorStats(system)).episodes?.completed === 90, 15_000),
        'all 90 episodes closed',
      );
      // What `warden status` shows an operator of the three.
      const status = await systemAdmin({
        system,
        config: () => config,
        configFiles: { dir: tempDir('warden-overload-config-'), env: {} },
        modelVersion: () => 'rules',
        counters: async () => ({ decisions: 0, episodesCompleted: 0 }),
        startedAt: Date.now(),
      }).status();
      const [cappedStatus, laterStatus, releasedStatus] = status.sandboxes;
      t.like(cappedStatus, {
        name: 'capped',
        address: cappedAt!.address,
        events: c.events,
        maxEventsPerSecond: rate,
        inFlight: 0,
      });
      t.true(cappedStatus!.throttledMs > 0 && cappedStatus!.lastBatchMs > 0);
      t.like(laterStatus, { name: 'later', maxEventsPerSecond: later });
      t.like(releasedStatus, { name: 'released', maxEventsPerSecond: 0 });
    } finally {
      await system.stop();
      await Promise.all(sandboxes.map((x) => x.stop()));
    }
  },
);

test.serial(
  'episodes opened and never ended are bounded by dispatch.maxOpenEpisodes: the least recently active are stored as partial',
  async (t) => {
    const system = new ActorSystem({
      config: testConfig({
        runtime: { placement: { control: ['episodes'], sinks: ['db-writer', 'learner'] } },
        dispatch: { maxOpenEpisodes: 100 },
      }),
      modules: {
        ...ACTOR_MODULES,
        'db-writer': fixtureActor('sink'),
        learner: fixtureActor('sink'),
      },
    });
    const inbox = new Inbox(system);
    await system.start();
    try {
      for (let i = 0; i < 150; i++)
        system.send(
          'episodes',
          episodeStarted({ sandboxId: 'lab', episodeId: `open-${i}`, stage: 1 }),
        );
      const stored = () =>
        inbox.messages
          .filter((m) => m.type === 'sunk' && m.actor === 'db-writer')
          .map((m) => m.message as EpisodeTrajectory)
          .filter((m) => m.type === 'episode-trajectory');
      t.true(await until(async () => stored().length >= 50), 'fifty trajectories stored');
      const evicted = stored();
      t.deepEqual(
        evicted.map((e) => e.episodeId),
        Array.from({ length: 50 }, (_, i) => `open-${i}`),
        'the fifty opened first (none active since) went',
      );
      for (const e of evicted) {
        t.true(e.partial);
        t.regex(e.failureReason ?? '', /evicted: more than 100 episodes open/);
      }
      const s = (await actorStats(system)).episodes!;
      t.is(s.open, 100);
      t.is(s.evicted, 50);
      t.is(s.partial, 50);
    } finally {
      await system.stop();
    }
  },
);

test.serial(
  'a database slower than rows arrive: rows past database.maxBufferedRows go to the journal instead of a full mailbox, and each is stored once',
  async (t) => {
    const system = new ActorSystem({
      config: testConfig({
        runtime: { placement: { control: ['db-writer'] }, mailboxCapacity: 16 },
        database: {
          url: db.server.url,
          journalDir: tempDir('warden-overload-journal-'),
          batchRows: 10,
          maxBufferedRows: 100,
          writeConnections: 1,
          retryMs: 500,
        },
      }),
    });
    // Writes to the patterns table wait for this transaction: a database that takes nothing.
    const locker = await db.pool.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE attack_patterns IN ACCESS EXCLUSIVE MODE');
    let locked = true;
    await system.start();
    try {
      for (let i = 0; i < 300; i++)
        system.send('db-writer', attackPattern(`spill-${String(i).padStart(3, '0')}`));
      t.true(
        await until(async () => (await actorStats(system))['db-writer']!.queued! >= 190, 15_000),
        'rows beyond the first batch and the buffer went to the journal while the database took nothing',
      );
      t.is((await system.stats()).deadLetters, 0, 'no row was dropped at a full mailbox');
      await locker.query('COMMIT');
      locked = false;
      const count = async () =>
        Number(
          (
            await db.pool.query(
              `SELECT count(*) AS n FROM attack_patterns WHERE pattern_id LIKE 'spill-%'`,
            )
          ).rows[0].n,
        );
      t.true(await until(async () => (await count()) === 300, 30_000), 'all 300 rows stored');
      t.true(
        await until(async () => (await actorStats(system))['db-writer']!.journalBytes === 0),
        'the journal drained',
      );
      t.is(await count(), 300, 'each stored once');
    } finally {
      if (locked) await locker.query('COMMIT').catch(() => undefined);
      locker.release();
      await system.stop();
    }
  },
);

test.serial(
  'an actor after the adapter whose thread stalls holds the sandboxes back: the messages waiting for it stay within its mailbox, and every event and episode is accounted for',
  async (t) => {
    const capacity = 128;
    const flood = replaying('flood', 0, 120, 60);
    const ports = await Promise.all([flood.start()]);
    const system = new ActorSystem({
      config: testConfig({
        runtime: {
          placement: { io: ['receiver', 'dispatcher'], hot: ['adapter'], control: ['episodes'] },
          mailboxCapacity: capacity,
        },
        telemetry: { intakeWindow: 200 },
        sandboxes: sandboxesAt([flood], ports),
        models: { dir: tempDir('warden-overload-models-') },
      }),
      // The real episodes actor, its thread stalled for 1.5 s every 100 messages.
      modules: { ...ACTOR_MODULES, episodes: fixtureActor('slow-episodes') },
    });
    await system.start();
    try {
      // Messages for the episodes actor pile up in the channel to its stalled thread, where no
      // mailbox bound applies; sampled every 50 ms.
      let most = 0;
      t.true(
        await until(async () => {
          const s = await actorStats(system);
          most = Math.max(most, s.episodes?.pending ?? Number.POSITIVE_INFINITY);
          return flood.done && s.episodes?.completed === 120;
        }, 120_000),
        'the sandbox finished and all 120 episodes closed',
      );
      const s = await actorStats(system);
      const held = s['receiver:flood']!;
      t.log(
        `${flood.stats.eventsSent} events, ${held.pauses} pauses (${held.pausedMs} ms), the sandbox's writes held ${flood.stats.writesHeld} times; at most ${most} messages pending for the episodes actor (mailbox ${capacity})`,
      );
      t.true(most <= capacity, `at most ${most} messages waited for the episodes actor`);
      t.is(s.episodes!.dropped, 0, "the episodes actor's mailbox never overflowed");
      t.true(held.pauses! >= 1, 'the receiver stopped reading while the episodes actor caught up');
      everyMessageArrived(t, s, [flood]);
      t.is(s.episodes!.partial, 0);
    } finally {
      await system.stop();
      await flood.stop();
    }
  },
);
