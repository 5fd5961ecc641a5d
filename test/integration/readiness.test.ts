// `/ready` on the metrics endpoint, against a real PostgreSQL: ready while the database answers,
// not ready (503, with the failing check named) while it is down or once a stop began, ready again
// when it is back; `/health` answers throughout.

import test from 'ava';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { startMetricsServer } from '../../src/services/metrics.ts';
import { readinessProbe } from '../../src/services/readiness.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { testConfig, until } from '../helpers.ts';

let db: TestDatabase;
test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  await db?.stop();
});

interface Answer {
  readonly code: number;
  readonly status: string;
  readonly checks: Record<string, { ok: boolean; detail: string }>;
}

test.serial(
  '/ready says ready while the database answers, 503 naming the check while it is down or Warden stops; /health answers throughout',
  async (t) => {
    let stopping = false;
    const said: string[] = [];
    const system = new ActorSystem({
      config: testConfig({ runtime: { placement: {} } }),
      log: silentLogger,
    });
    const metrics = await startMetricsServer(system, 0, '127.0.0.1', silentLogger, {
      readiness: readinessProbe({
        pool: db.pool,
        stopping: () => stopping,
        modelVersion: () => 'v7',
        timeoutMs: 1_000,
        log: {
          warn: (_: object, msg: string) => said.push(msg),
          info: (_: object, msg: string) => said.push(msg),
        } as never,
      }),
    });
    const base = `http://127.0.0.1:${metrics.port}`;
    const ready = async (): Promise<Answer> => {
      const res = await fetch(`${base}/ready`);
      return { code: res.status, ...((await res.json()) as Omit<Answer, 'code'>) };
    };
    const health = async () => (await fetch(`${base}/health`)).status;
    // What Prometheus sees (WardenDatabaseUnreachable reads it).
    const gauge = async (check: string) =>
      Number(
        new RegExp(`^warden_ready\\{check="${check}"\\} (\\S+)$`, 'm').exec(
          await (await fetch(`${base}/metrics`)).text(),
        )?.[1] ?? Number.NaN,
      );
    try {
      const up = await ready();
      t.is(up.code, 200);
      t.is(up.status, 'ready');
      t.deepEqual(up.checks.database, { ok: true, detail: 'answers' });
      t.deepEqual(up.checks.model, { ok: true, detail: 'serving v7' });
      t.is(await gauge('database'), 1);

      await db.server.pause();
      try {
        const down = await ready();
        t.is(down.code, 503);
        t.is(down.status, 'not ready');
        t.false(down.checks.database!.ok);
        t.regex(down.checks.database!.detail, /unreachable|no answer/);
        t.true(down.checks.running!.ok, 'only the database is named');
        t.is(await health(), 200, 'alive while not ready');
        t.is(await gauge('database'), 0);
        await ready();
        t.deepEqual(said, ['database not answering (readiness)'], 'logged once, not per probe');
      } finally {
        await db.server.resume();
      }
      t.true(await until(async () => (await ready()).code === 200, 15_000), 'ready again');
      t.is(said.at(-1), 'database answers again (readiness)');
      t.is(await gauge('database'), 1);

      stopping = true;
      const leaving = await ready();
      t.is(leaving.code, 503);
      t.deepEqual(leaving.checks.running, { ok: false, detail: 'stopping' });
      t.is(await health(), 200);
    } finally {
      await metrics.stop();
    }
  },
);
