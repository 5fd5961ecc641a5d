// The Admin service of a running system over loopback gRPC: status, deploying a model version
// (verified by the real inference pool on its worker threads, `latest` follows), refusing a
// tampered one, rolling back, and a configuration update validated before it is written — each
// needing the operate role, as the CLI and an operator's script use it.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { initParams } from '../../src/actors/learner/q-network.ts';
import { DEFAULT_CONFIG_DIR, loadConfig } from '../../src/config/load.ts';
import type { WardenConfig } from '../../src/config/schema.ts';
import { exportModel, latestVersion, modelFile } from '../../src/models/store.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { adminClient } from '../../src/services/admin.ts';
import { readinessProbe } from '../../src/services/readiness.ts';
import { type RunningServices, startServices } from '../../src/services/server.ts';
import { systemAdmin } from '../../src/services/system-admin.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { Inbox, modelDraft, runCli, testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const OPERATE = 'ops-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
const DIM = 64;

let db: TestDatabase;
let system: ActorSystem;
let services: RunningServices;
let modelsDir: string;
let configDir: string;
let config: WardenConfig;
let versions: string[];
let modelVersion = 'rules';

test.before(async () => {
  db = await startTestDatabase();
  modelsDir = tempDir('warden-admin-models-');
  versions = [];
  for (const seed of [1, 2, 3]) {
    const { metadata } = await exportModel(
      modelsDir,
      initParams([DIM, 8, 6], false, seed),
      modelDraft(),
    );
    versions.push(metadata.version);
  }
  configDir = tempDir('warden-admin-config-');
  copyFileSync(join(DEFAULT_CONFIG_DIR, 'default.json'), join(configDir, 'default.json'));
  config = testConfig({
    runtime: { placement: { inference: ['adapter'] } },
    inference: { workers: 1 },
    models: { dir: modelsDir },
    database: { queryPort: 0 },
  });
  system = new ActorSystem({ config });
  system.on('message', ({ message }) => {
    if (message.type === 'model-activated')
      modelVersion = (message as unknown as { version: string }).version;
  });
  const started = new Inbox(system);
  await system.start();
  await started.waitFor((m) => m.type === 'model-activated');
  services = await startServices({
    db: db.pool,
    log: silentLogger,
    config,
    env: { WARDEN_AUTH_TOKENS: `ops:operate:${OPERATE},siem:read:${READ}` },
    admin: systemAdmin({
      system,
      config: () => config,
      configFiles: { dir: configDir, env: {} },
      modelVersion: () => modelVersion,
      counters: async () => ({ decisions: 0, episodesCompleted: 0 }),
      startedAt: Date.now(),
      readiness: readinessProbe({
        pool: db.pool,
        stopping: () => false,
        modelVersion: () => modelVersion,
      }),
    }),
  });
});
test.after.always(async () => {
  await services?.stop();
  await system?.stop();
  await db?.stop();
});

const admin = (token?: string) => adminClient(`127.0.0.1:${services.port}`, { token });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (e: { code: number }) => grpc.status[e.code],
  );

test.serial('status, deploy, refusal of a tampered model, rollback', async (t) => {
  const [v1, v2, v3] = versions as [string, string, string];
  const c = admin(OPERATE);
  t.teardown(() => c.close());
  t.is((await c.status()).modelVersion, v3, 'the latest version serves at start');

  t.deepEqual(await c.deploy(v1), { servingVersion: v1, previousVersion: v3 });
  t.is(modelVersion, v1, 'the pool switched');
  t.is(latestVersion(modelsDir), v1, 'latest follows a deployed version');

  t.is(await codeOf(c.deploy('v999')), 'NOT_FOUND');
  t.is(await codeOf(c.deploy('../etc')), 'INVALID_ARGUMENT');

  const bytes = readFileSync(modelFile(modelsDir, v2));
  bytes[bytes.length - 3]! ^= 0xff;
  writeFileSync(modelFile(modelsDir, v2), bytes);
  const refused = await c.deploy(v2).catch((e: grpc.ServiceError) => e);
  t.is((refused as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
  t.regex((refused as grpc.ServiceError).details, /refused by the inference pool: .*sha256/i);
  t.is(modelVersion, v1, 'the serving version stays');
  t.is(latestVersion(modelsDir), v1);

  t.deepEqual(await c.rollback(), { servingVersion: v3, previousVersion: v1 });
  t.is(modelVersion, v3);
  t.is(latestVersion(modelsDir), v3);
});

test.serial('admin calls need the operate role', async (t) => {
  const anonymous = admin();
  const reader = admin(READ);
  t.teardown(() => {
    anonymous.close();
    reader.close();
  });
  t.is(await codeOf(anonymous.rollback()), 'UNAUTHENTICATED');
  t.is(await codeOf(reader.deploy(versions[0]!)), 'PERMISSION_DENIED');
  t.is(await codeOf(reader.updateConfig('{}')), 'PERMISSION_DENIED');
  t.is(await codeOf(reader.status()), 'PERMISSION_DENIED');
});

test.serial(
  '`warden config update` validates strictly before writing; `warden status` and `models deploy` as an operator runs them',
  async (t) => {
    const server = ['--server', `127.0.0.1:${services.port}`];
    const file = join(configDir, 'candidate.json');
    const target = join(configDir, 'dev.json');
    process.env.WARDEN_TOKEN = OPERATE;
    t.teardown(() => {
      delete process.env.WARDEN_TOKEN;
    });

    writeFileSync(file, JSON.stringify({ learning: { gamma: 7 }, inference: { maxBatch: 64 } }));
    const invalid = await runCli(['config', 'update', file, ...server]);
    t.is(invalid.code, 1);
    t.regex(
      invalid.text,
      /refused, nothing applied: learning\.gamma: invalid value 7.*INVALID_ARGUMENT/,
    );
    t.throws(() => readFileSync(target), undefined, 'nothing written');

    writeFileSync(
      file,
      JSON.stringify({ alerts: { window: 300 }, security: { certReloadMs: 5_000 } }),
    );
    const dry = await runCli(['config', 'update', file, '--dry-run', ...server]);
    t.is(dry.code, 0);
    t.regex(dry.text, /valid \(dry run, nothing applied\); changes: .*alerts\.window/);
    t.regex(dry.text, /after a restart: .*security\.certReloadMs/);
    t.throws(() => readFileSync(target));

    const applied = await runCli(['config', 'update', file, ...server]);
    t.is(applied.code, 0, applied.text);
    t.deepEqual(JSON.parse(readFileSync(target, 'utf8')), {
      alerts: { window: 300 },
      security: { certReloadMs: 5_000 },
    });

    const status = await runCli(['status', ...server]);
    t.regex(status.text, new RegExp(`model ${modelVersion}  environment dev`));
    t.regex(
      status.text,
      new RegExp(`^ready: running, database answers, model serving ${modelVersion}$`, 'm'),
    );
    const deployed = await runCli(['models', 'deploy', versions[0]!, ...server]);
    t.is(deployed.code, 0, deployed.text);
    t.regex(deployed.text, new RegExp(`serving ${versions[0]}`));

    delete process.env.WARDEN_TOKEN;
    const denied = await runCli(['models', 'rollback', ...server]);
    t.is(denied.code, 1);
    t.regex(denied.text, /UNAUTHENTICATED.*WARDEN_TOKEN/);
  },
);

test('a configuration update is compared with what the files say, not with what `warden start` added to them: capping a sandbox applies live', async (t) => {
  const dir = tempDir('warden-admin-files-');
  copyFileSync(join(DEFAULT_CONFIG_DIR, 'default.json'), join(dir, 'default.json'));
  writeFileSync(
    join(dir, 'dev.json'),
    JSON.stringify({ sandboxes: [{ name: 'lab', address: '127.0.0.1:50090' }] }),
  );
  const files = loadConfig({ dir, env: {} }).config;
  // What `warden start` runs with: a reference sandbox before the configured one, the embedded
  // database's URL.
  const running: WardenConfig = {
    ...files,
    sandboxes: [
      { name: 'sandbox-positive', address: '127.0.0.1:1', tls: null },
      ...files.sandboxes,
    ],
    database: { ...files.database, url: 'postgres://warden@127.0.0.1:5/warden' },
  };
  const admin = systemAdmin({
    system,
    config: () => running,
    fileConfig: () => files,
    configFiles: { dir, env: {} },
    modelVersion: () => modelVersion,
    counters: async () => ({ decisions: 0, episodesCompleted: 0 }),
    startedAt: Date.now(),
  });
  const plan = await admin.updateConfig(
    JSON.stringify({
      sandboxes: [{ name: 'lab', address: '127.0.0.1:50090', maxEventsPerSecond: 5_000 }],
    }),
    true,
  );
  t.deepEqual(plan.changed, ['sandboxes.0.maxEventsPerSecond']);
  t.deepEqual(plan.restartRequired, []);
});
