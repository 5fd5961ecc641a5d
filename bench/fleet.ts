// Scale-out through PostgreSQL (issue 8), two measurements on an embedded PostgreSQL:
//
//   experiences  inference "hosts" (connections) append 64-feature transitions in batches while
//                the learner's feed reads them behind its cursor: rows/s written and read, and
//                the reader's lag. Baseline in the same process: the same inserts without the
//                cursor's advisory lock and idempotency key.
//   models       two real inference hosts (`warden run`, role inference, child processes) follow
//                the registry; each published version is timed from publish to the last host
//                serving it (goal ≤ 1 s). Baseline: NOTIFY → LISTEN delivery to this process.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { initParams } from '../src/actors/learner/q-network.ts';
import {
  consumeExperiences,
  type ExperienceRow,
  insertExperiences,
} from '../src/cluster/experiences.ts';
import { MODELS_CHANNEL, publishModel } from '../src/cluster/models.ts';
import { createPool } from '../src/db/connect.ts';
import type { ActionId } from '../src/messages/action.ts';
import { exportModel } from '../src/models/store.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { modelDraft } from '../test/helpers.ts';
import { tempDir } from '../test/temp-dir.ts';
import { withDatabase } from './e2e.ts';
import { fmtRate, printLatency, summarize, writeResult } from './lib.ts';

const BIN = new URL('../bin/warden.js', import.meta.url).pathname;
const DIM = 64;

const rows = (host: string, batch: number, n: number): ExperienceRow[] =>
  Array.from({ length: n }, (_, i) => ({
    hostId: host,
    episodeId: `ep-${batch}-${Math.floor(i / 100)}`,
    stage: 1,
    step: i % 100,
    modelVersion: 'v1',
    decidedAt: Date.now(),
    state: Array.from({ length: DIM }, (_, k) => ((i + k) % 97) / 97),
    action: (i % 6) as ActionId,
    reward: -0.01,
    nextState: Array.from({ length: DIM }, (_, k) => ((i + k + 1) % 97) / 97),
    done: i % 100 === 99,
  }));

async function experiences(url: string, seconds: number, hosts: number, batchRows: number) {
  const pool = createPool(url, silentLogger, hosts + 3);
  // Baseline: plain multi-row inserts into a scratch table of the same shape.
  await pool.query('CREATE TABLE IF NOT EXISTS bench_plain (LIKE experiences INCLUDING DEFAULTS)');
  const plainInsert = async (client: pg.PoolClient, r: ExperienceRow[]) =>
    client.query(
      `INSERT INTO bench_plain (host_id, episode_id, stage, step, model_version, decided_at, state, action, reward, next_state, done)
       SELECT x."hostId", x."episodeId", x.stage, x.step, x."modelVersion", to_timestamp(x."decidedAt" / 1000.0),
              x.state, x.action, x.reward, x."nextState", x.done
         FROM jsonb_to_recordset($1::jsonb) AS x("hostId" text, "episodeId" text, stage int2, step int,
              "modelVersion" text, "decidedAt" float8, state real[], action int2, reward real, "nextState" real[], done bool)`,
      [JSON.stringify(r)],
    );
  const run = async (
    insert: (c: pg.PoolClient, r: ExperienceRow[]) => Promise<unknown>,
    withReader: boolean,
  ) => {
    let written = 0;
    let read = 0;
    const end = Date.now() + seconds * 1000;
    const writer = async (h: number) => {
      const client = await pool.connect();
      try {
        for (let b = 0; Date.now() < end; b++) {
          const batch = rows(`host-${h}-${Math.random()}`, b, batchRows);
          await client.query('BEGIN');
          await insert(client, batch);
          await client.query('COMMIT');
          written += batch.length;
        }
      } finally {
        client.release();
      }
    };
    const reader = async () => {
      while (Date.now() < end + 2_000) {
        const got = await consumeExperiences(pool, 'bench', 5_000, () => undefined);
        read += got;
        if (got === 0) {
          if (Date.now() >= end) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const t0 = Date.now();
    await Promise.all([
      ...Array.from({ length: hosts }, (_, h) => writer(h)),
      ...(withReader ? [reader()] : []),
    ]);
    return { written, read, seconds: (Date.now() - t0) / 1000, writeSeconds: seconds };
  };
  const plain = await run(plainInsert, false);
  const shared = await run((c, r) => insertExperiences(c, r), true);
  await pool.end();
  return { plain, shared };
}

function inferenceHost(
  url: string,
  name: string,
): { child: ChildProcess; exited: Promise<unknown> } {
  const dir = tempDir(`warden-fleet-bench-${name}-`);
  mkdirSync(join(dir, 'config'));
  writeFileSync(
    join(dir, 'config', 'default.json'),
    JSON.stringify({
      cluster: { role: 'inference', hostId: name },
      database: { queryPort: 0, journalDir: join(dir, 'journal') },
      metrics: { port: 0 },
      models: { dir: join(dir, 'models') },
      logging: { level: 'warn' },
      replay: { capacity: 10_000 },
      inference: { workers: 1 },
    }),
  );
  const child = spawn(process.execPath, [BIN, 'run', '--config-dir', join(dir, 'config')], {
    env: { ...process.env, DATABASE_URL: url, WARDEN_ENV: 'bench-none' },
    stdio: 'ignore',
  });
  return { child, exited: new Promise((r) => child.once('exit', r)) };
}

async function models(url: string, versions: number) {
  const db = createPool(url, silentLogger, 4);
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  await listener.query(`LISTEN ${MODELS_CHANNEL}`);
  const heard = new Map<string, number>();
  listener.on('notification', (n) => n.payload && heard.set(n.payload, performance.now()));
  const hosts = ['bench-host-1', 'bench-host-2'].map((h) => inferenceHost(url, h));
  const serving = async () =>
    (
      await db.query<{ host_id: string; model_version: string }>(
        'SELECT host_id, model_version FROM host_status WHERE host_id LIKE $1',
        ['bench-host-%'],
      )
    ).rows;
  const dir = tempDir('warden-fleet-bench-models-');
  const toServe: number[] = [];
  const toNotify: number[] = [];
  try {
    // Both hosts up (they report the rule table first).
    for (let i = 0; i < 600 && (await serving()).length < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    for (let v = 0; v < versions; v++) {
      const { metadata } = await exportModel(
        dir,
        initParams([DIM, 256, 256, 6], false, v + 1),
        modelDraft(),
      );
      const t0 = performance.now();
      await publishModel(db, dir, metadata.version);
      for (;;) {
        const s = await serving();
        if (s.length === 2 && s.every((r) => r.model_version === metadata.version)) break;
        if (performance.now() - t0 > 30_000)
          throw new Error(`hosts did not converge on ${metadata.version}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      toServe.push(performance.now() - t0);
      toNotify.push((heard.get(metadata.version) ?? Number.NaN) - t0);
    }
  } finally {
    for (const h of hosts) h.child.kill('SIGINT');
    await Promise.all(hosts.map((h) => h.exited));
    await listener.end();
    await db.end();
  }
  return { toServe: summarize(toServe), toNotify: summarize(toNotify.filter(Number.isFinite)) };
}

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 10);
  const versions = Number(args[1] ?? 10);
  console.log(
    `fleet bench: experiences for ${seconds} s (2 writer hosts, batches of 500), then ${versions} model publishes to 2 inference hosts`,
  );
  const result = await withDatabase(async (url) => ({
    exp: await experiences(url, seconds, 2, 500),
    mod: await models(url, versions),
  }));
  const { plain, shared } = result.exp;
  console.log(`  baseline plain inserts      ${fmtRate(plain.written / plain.seconds)} rows/s`);
  console.log(
    `  shared experiences          ${fmtRate(shared.written / shared.writeSeconds)} rows/s written, ${fmtRate(shared.read / shared.seconds)} rows/s read by the feed; unread at the end ${shared.written - shared.read}`,
  );
  printLatency('  publish → NOTIFY heard (baseline)', result.mod.toNotify, 'ms');
  printLatency('  publish → last host serving', result.mod.toServe, 'ms');
  writeResult(
    'fleet',
    {
      'plain insert rows/s (baseline)': plain.written / plain.seconds,
      'experience rows/s written': shared.written / shared.writeSeconds,
      'experience rows/s read': shared.read / shared.seconds,
      'rows unread at end': shared.written - shared.read,
      'publish→notify p50 ms': result.mod.toNotify.p50,
      'publish→all serving p50 ms': result.mod.toServe.p50,
      'publish→all serving max ms': result.mod.toServe.max,
    },
    result,
  );
}
