// The PatternQuery gRPC service over loopback on a real PostgreSQL, the `warden patterns query`
// and `warden db episodes` commands against it, and the db-writer actor on its own worker thread
// feeding the same store.

import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { type DbRecord, DbWriter } from '../../src/actors/db-writer/writer.ts';
import { learnedPattern } from '../../src/actors/episodes/patterns.ts';
import { Journal } from '../../src/db/journal.ts';
import type { ActionId } from '../../src/messages/action.ts';
import type { Label } from '../../src/messages/index.ts';
import type { EpisodeTrajectory } from '../../src/messages/trajectory.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { patternQueryClient } from '../../src/services/pattern-query.ts';
import { type RunningServices, startServices } from '../../src/services/server.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { runCli, testConfig, until } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const READER = 'siem-reader-token-0123456789';
const OPERATOR = 'operator-only-token-0123456789';
let db: TestDatabase;
let service: RunningServices;
const denied: string[] = [];
test.before(async () => {
  db = await startTestDatabase();
  service = await startServices({
    db: db.pool,
    log: silentLogger,
    config: testConfig({ database: { queryPort: 0 } }),
    env: { WARDEN_AUTH_TOKENS: `siem:read:${READER},ops:operate:${OPERATOR}` },
    onDenied: (_service, method, reason) => denied.push(`${method}:${reason}`),
  });
});
test.after.always(async () => {
  await service?.stop();
  await db?.stop();
});

test.serial(
  'the db-writer actor on its own thread stores learned patterns; queries over gRPC return them with confidence',
  async (t) => {
    const config = testConfig({
      runtime: { placement: { io: ['db-writer'] } },
      database: {
        url: db.server.url,
        journalDir: tempDir('warden-j-'),
        retryMs: 100,
      },
    });
    const system = new ActorSystem({ config });
    const state = new Float32Array(64);
    state[12] = 0.4; // code_injection
    await system.start();
    try {
      for (let i = 0; i < 25; i++) {
        system.send(
          'db-writer',
          learnedPattern({
            episodeId: `ep-${i}`,
            stage: 1,
            state,
            action: 2,
            reward: 1,
            confidence: 0.9,
            modelVersion: 'v7',
            family: i % 5 === 0 ? 'QakBot' : null,
            timestamp: Date.UTC(2026, 5, 1, 0, i),
          }),
        );
      }
      t.true(
        await until(
          async () =>
            Number((await db.pool.query('SELECT count(*) AS n FROM attack_patterns')).rows[0].n) ===
            25,
        ),
      );
      // Corroboration runs beside the writes (every 100 ms): wait for it to have moved some.
      t.true(
        await until(
          async () =>
            Number(
              (
                await db.pool.query(
                  'SELECT count(*) AS n FROM attack_patterns WHERE agreements + disagreements > 0',
                )
              ).rows[0].n,
            ) > 0,
        ),
      );
    } finally {
      await system.stop();
    }
    const client = patternQueryClient(`127.0.0.1:${service.port}`, { token: READER });
    try {
      const injection = await client.byAttackType('injection', 100);
      t.is(injection.length, 20, 'behaviour class when the sandbox names no family');
      t.is((await client.byAttackType('QakBot')).length, 5, 'the family when it does');
      t.true(injection.every((p) => p.modelVersion === 'v7'));
      // Confidence: the policy's 0.9, moved by later outcomes on the same state — the newest
      // pattern has none yet; earlier ones met both later injections and later QakBots.
      t.true(injection.every((p) => p.confidence >= 0 && p.confidence <= 1));
      const newest = injection.find((p) => p.episodeId === 'ep-24');
      t.true(
        Math.abs(newest!.confidence - 0.9) < 1e-6,
        "no later outcome: the policy's confidence",
      );
      t.true(
        injection.some((p) => Math.abs(p.confidence - 0.9) > 0.01),
        'earlier patterns moved with later similar outcomes',
      );
      const window = await client.byTimeRange(
        Date.UTC(2026, 5, 1, 0, 10),
        Date.UTC(2026, 5, 1, 0, 15),
      );
      t.deepEqual(window.map((p) => p.episodeId).sort(), [
        'ep-10',
        'ep-11',
        'ep-12',
        'ep-13',
        'ep-14',
      ]);
      const near = await client.nearest(Array.from(state), 3);
      t.is(near.length, 3);
      t.true(near.every((p) => p.distance < 1e-6 && p.score > 0.89));
      const bad = await client.nearest([], 3).catch((e: { code: number; details: string }) => e);
      t.is((bad as { code: number }).code, 3, 'INVALID_ARGUMENT for an empty vector');
      const tooMany = await client.byAttackType('x', 1e6).catch((e: { code: number }) => e);
      t.is((tooMany as { code: number }).code, 3);
    } finally {
      client.close();
    }
  },
);

test.serial(
  'callers without a token, with a wrong token or without the read role are refused and counted',
  async (t) => {
    const address = `127.0.0.1:${service.port}`;
    const codeOf = async (token: string | undefined) => {
      const client = patternQueryClient(address, { token });
      try {
        await client.byAttackType('QakBot');
        return 0;
      } catch (error) {
        return (error as { code: number }).code;
      } finally {
        client.close();
      }
    };
    denied.length = 0;
    t.is(await codeOf(undefined), grpc.status.UNAUTHENTICATED);
    t.is(await codeOf('not-a-known-token-at-all'), grpc.status.UNAUTHENTICATED);
    t.is(await codeOf(OPERATOR), grpc.status.PERMISSION_DENIED, 'operate does not imply read');
    t.is(await codeOf(READER), 0);
    t.deepEqual(denied, [
      'ByAttackType:no-credentials',
      'ByAttackType:bad-token',
      'ByAttackType:missing-role',
    ]);
  },
);

test.serial('`warden patterns query` prints patterns with their confidence', async (t) => {
  const server = ['patterns', 'query', '--server', `127.0.0.1:${service.port}`];
  const without = await runCli([...server, '--type', 'QakBot']);
  t.is(without.code, 1);
  t.regex(without.text, /authentication required .*UNAUTHENTICATED.*WARDEN_TOKEN/);
  process.env.WARDEN_TOKEN = READER;
  t.teardown(() => {
    delete process.env.WARDEN_TOKEN;
  });
  const byType = await runCli([...server, '--type', 'QakBot']);
  t.is(byType.code, 0);
  t.regex(byType.text, /QakBot\s+terminate\s+confidence 0\.\d{3}/);
  t.regex(byType.text, /5 pattern\(s\)/);
  const near = await runCli([
    ...server,
    '--near',
    Array(64).fill(0).join(','),
    '--k',
    '2',
    '--json',
  ]);
  t.is(near.code, 0);
  t.is(JSON.parse(near.text).length, 2);
});

test.serial(
  'the episode history: one episode, every episode of an artifact, or the latest, each stage with its last action; `warden db episodes` prints them',
  async (t) => {
    const writer = new DbWriter(
      db.pool,
      new Journal<DbRecord>(tempDir('warden-history-journal-'), 1 << 20),
      silentLogger,
    );
    const step = (stage: 1 | 2, step: number, action: ActionId, reward = 0) => ({
      stage,
      step,
      state: new Float32Array(4),
      action,
      reward,
      done: action >= 2,
    });
    const episode = (id: string, artifact: string, endedAt: number, label: Label) =>
      ({
        type: 'episode-trajectory',
        episodeId: id,
        label,
        partial: false,
        failureReason: null,
        artifactHash: artifact,
        modelVersion: 'v9',
        totalReward: 1.5,
        startedAt: endedAt - 1_000,
        endedAt,
        steps: [
          step(1, 0, 0),
          step(1, 1, 1),
          step(1, 2, 0),
          step(1, 3, 0),
          step(1, 4, 3, 1),
          step(2, 0, 0),
          step(2, 1, 5, 0.5),
        ],
      }) satisfies EpisodeTrajectory;
    const t0 = Date.UTC(2026, 6, 1);
    t.is(
      await writer.write([
        episode('hist-1', 'aaaa', t0, 'malicious'),
        episode('hist-2', 'bbbb', t0 + 60_000, 'benign'),
        episode('hist-3', 'aaaa', t0 + 120_000, 'malicious'),
        {
          ...episode('hist-4', 'cccc', t0 + 180_000, 'unknown'),
          partial: true,
          failureReason: 'stage 2: sandbox-crash',
          steps: [step(1, 0, 0)],
        },
      ]),
      'persisted',
    );
    const client = patternQueryClient(`127.0.0.1:${service.port}`, { token: READER });
    t.teardown(() => client.close());
    const ids = (list: { episodeId: string }[]) => list.map((e) => e.episodeId);
    t.deepEqual(ids(await client.episodes({ artifactHash: 'aaaa' })), ['hist-3', 'hist-1']);
    const [one] = await client.episodes({ episodeId: 'hist-2', steps: true });
    t.like(one, {
      episodeId: 'hist-2',
      label: 'benign',
      artifactHash: 'bbbb',
      partial: false,
      modelVersion: 'v9',
    });
    t.deepEqual(one!.stages, [
      { stage: 1, steps: 5, finalAction: 3, reward: 1 },
      { stage: 2, steps: 2, finalAction: 5, reward: 0.5 },
    ]);
    t.deepEqual(
      one!.steps.map((s) => s.action),
      [0, 1, 0, 0, 3, 0, 5],
    );
    t.deepEqual(
      ids(await client.episodes({ fromMs: t0 + 60_000, toMs: t0 + 180_000 })),
      ['hist-3', 'hist-2'],
      'ended in [from, to), latest first',
    );
    t.deepEqual(ids(await client.episodes({ limit: 1 })), ['hist-4']);
    await t.throwsAsync(client.episodes({ episodeId: 'hist-1', artifactHash: 'aaaa' }), {
      message: /not both/,
    });
    await t.throwsAsync(client.episodes({ limit: 101, steps: true }), { message: /exceeds 100/ });

    process.env.WARDEN_TOKEN = READER;
    t.teardown(() => {
      delete process.env.WARDEN_TOKEN;
    });
    const server = ['db', 'episodes', '--server', `127.0.0.1:${service.port}`];
    const printed = await runCli([...server, '--artifact', 'aaaa', '--steps']);
    t.is(printed.code, 0);
    t.regex(printed.text, /hist-3 {2}malicious {2}complete {2}reward 1\.50 {2}v9 {2}artifact aaaa/);
    t.regex(
      printed.text,
      /stage 1: 5 decision\(s\), last quarantine, reward 1\.00\n {4}continue → raise-isolation → continue ×2 → quarantine/,
    );
    t.regex(printed.text, /2 episode\(s\)/);
    const partial = await runCli([...server, '--id', 'hist-4']);
    t.regex(partial.text, /hist-4 {2}unknown {2}partial \(stage 2: sandbox-crash\)/);
    const unknown = await runCli([...server, '--id', 'never-seen']);
    t.is(unknown.code, 1);
    t.regex(unknown.text, /no episode never-seen in the history/);
    const none = await runCli([...server, '--artifact', 'ffff']);
    t.is(none.code, 0, 'a search that matches nothing is not an error');
    t.regex(none.text, /^0 episode\(s\)/m);
    const bad = await runCli([...server, '--from', 'yesterday']);
    t.is(bad.code, 1);
    t.regex(bad.text, /--from must be a date/);
  },
);
