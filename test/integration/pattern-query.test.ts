// The PatternQuery gRPC service over loopback on a real PostgreSQL, the `warden patterns query`
// command against it, and the db-writer actor on its own worker thread feeding the same store.

import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { learnedPattern } from '../../src/actors/episodes/patterns.ts';
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
  t.regex(byType.text, /QakBot\s+action 2\s+confidence 0\.\d{3}/);
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
