// Configuration: schema file in sync, safe defaults with warnings naming the field (9.3),
// environment overlays (property 39), hyper-parameters applied (property 37), hot reload
// (property 38), secrets only from the environment.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import {
  epsilonAt,
  hyperParameters,
  sampleOptions,
} from '../../src/actors/learner/hyper-parameters.ts';
import { configJsonSchema } from '../../src/config/json-schema.ts';
import { DEFAULT_CONFIG_DIR, loadConfig } from '../../src/config/load.ts';
import { configurationReference } from '../../src/config/reference.ts';
import type { WardenConfig } from '../../src/config/schema.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { defaultOf } from '../../src/config/validate.ts';
import { ConfigWatcher, planChange } from '../../src/config/watch.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { createSampleBatch, ReplayStorage } from '../../src/runtime/shared/replay-storage.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { metricsRegistry } from '../../src/services/metrics.ts';
import { runCli } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

function configDir(files: Record<string, unknown>): string {
  const dir = tempDir('warden-config-');
  for (const [name, body] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof body === 'string' ? body : JSON.stringify(body));
  }
  return dir;
}

test('config/schema.json and config/default.json are generated from the one schema and in sync', (t) => {
  t.is(
    readFileSync(join(DEFAULT_CONFIG_DIR, 'schema.json'), 'utf8'),
    configJsonSchema(),
    'run `npm run config:schema`',
  );
  const defaults = JSON.parse(readFileSync(join(DEFAULT_CONFIG_DIR, 'default.json'), 'utf8'));
  delete defaults.$schema;
  t.deepEqual(defaults, defaultOf(ConfigSchema));
});

test('docs/configuration.md is generated from the schema and in sync', (t) => {
  const path = new URL('../../docs/configuration.md', import.meta.url).pathname;
  t.is(readFileSync(path, 'utf8'), configurationReference(), 'run `npm run config:schema`');
  t.regex(
    configurationReference(),
    /\| `learning\.gamma` \| number \| `1` \| ≥ 0, ≤ 1 \| live \| Discount\./,
  );
});

test('the shipped files load with no warning in every environment', (t) => {
  for (const env of ['dev', 'staging', 'prod'] as const) {
    const { warnings, config } = loadConfig({ env: { WARDEN_ENV: env } });
    t.deepEqual(warnings, [], env);
    t.is(config.environment, env);
  }
});

test('property 39: the environment named by WARDEN_ENV is loaded over the defaults', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom('dev' as const, 'staging' as const, 'prod' as const),
      fc.integer({ min: 10_000, max: 5_000_000 }),
      (env, capacity) => {
        const dir = configDir({
          'default.json': { replay: { capacity: 10_000 } },
          [`${env}.json`]: { replay: { capacity } },
        });
        const loaded = loadConfig({ dir, env: { WARDEN_ENV: env } });
        return (
          loaded.config.environment === env &&
          loaded.config.replay.capacity === capacity &&
          loaded.sources.length === 2
        );
      },
    ),
    { numRuns: 30 },
  );
  const loaded = loadConfig({
    dir: configDir({ 'default.json': {} }),
    env: { WARDEN_ENV: 'moon' },
  });
  t.is(loaded.config.environment, 'dev');
  t.is(loaded.warnings[0]?.field, 'WARDEN_ENV');
});

test('9.3: invalid values fall back to safe defaults with a warning naming each field', (t) => {
  const dir = configDir({
    'default.json': {
      learning: { learningRate: -1, gamma: 'high', batchSize: 64.5, loss: 'l1' },
      replay: { capacity: 100 },
      telemetry: { stateDim: 500 },
      surprise: true,
      runtime: 'fast',
    },
  });
  const { config, warnings } = loadConfig({ dir, env: {} });
  const fields = warnings.map((w) => w.field).sort();
  t.deepEqual(fields, [
    'learning.batchSize',
    'learning.gamma',
    'learning.learningRate',
    'learning.loss',
    'replay.capacity',
    'runtime',
    'surprise',
    'telemetry.stateDim',
  ]);
  t.is(config.learning.learningRate, 1e-3);
  t.is(config.learning.gamma, 1);
  t.is(config.replay.capacity, 1_000_000);
  t.is(config.telemetry.stateDim, 64);
  t.is(config.runtime.shutdownTimeoutMs, 5_000);
  t.regex(
    warnings.find((w) => w.field === 'replay.capacity')!.message,
    /invalid value 100.*using default 1000000/,
  );
});

test('property 3 for configuration: any JSON document loads into a complete, valid configuration', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (doc) => {
      const dir = configDir({ 'default.json': JSON.stringify(doc) });
      const { config } = loadConfig({ dir, env: {} });
      return (
        config.replay.capacity >= 10_000 &&
        config.telemetry.stateDim <= 100 &&
        config.learning.gamma >= 0 &&
        config.learning.gamma <= 1
      );
    }),
    { numRuns: 100 },
  );
  t.throws(() => loadConfig({ dir: configDir({ 'default.json': '{ nope' }), env: {} }), {
    code: 'WARDEN_CONFIG',
    message: /not valid JSON/,
  });
});

test('secrets come from the environment; a database URL in a file is ignored with a warning', (t) => {
  const dir = configDir({ 'default.json': { database: { url: 'postgres://u:secret@h/db' } } });
  const fromFile = loadConfig({ dir, env: {} });
  t.is(fromFile.config.database.url, null);
  t.is(fromFile.warnings[0]?.field, 'database.url');
  const fromEnv = loadConfig({
    dir: configDir({ 'default.json': {} }),
    env: { DATABASE_URL: 'postgres://x@127.0.0.1/w' },
  });
  t.is(fromEnv.config.database.url, 'postgres://x@127.0.0.1/w');
});

test('property 37: configured learning rate, gamma and epsilon decay are the ones applied', (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 1e-6, max: 0.5, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0.5, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 2_000 }),
      (learningRate, gamma, epsilonDecay, episodes) => {
        const dir = configDir({
          'default.json': {
            learning: { learningRate, gamma, epsilonDecay, epsilonStart: 1, epsilonEnd: 0 },
          },
        });
        const { config } = loadConfig({ dir, env: {} });
        const hp = hyperParameters(config);
        return (
          hp.learningRate === learningRate &&
          hp.gamma === gamma &&
          hp.epsilonDecay === epsilonDecay &&
          Math.abs(epsilonAt(episodes, hp) - epsilonDecay ** episodes) < 1e-12 &&
          sampleOptions(config).gamma === gamma
        );
      },
    ),
    { numRuns: 200 },
  );
  // Gamma reaches the n-step returns the learner trains on.
  const { config } = loadConfig({
    dir: configDir({
      'default.json': { learning: { gamma: 0.5 }, replay: { nStep: 2, prioritized: false } },
    }),
    env: {},
  });
  const replay = ReplayStorage.create({ capacity: 10_000, dim: 1 });
  const e = (r: number) => ({
    state: Float32Array.of(r),
    nextState: Float32Array.of(r),
    action: 0 as const,
    reward: r,
    done: false,
    episode: 1,
    stage: 1 as const,
  });
  replay.append([e(2), e(4)]);
  const out = createSampleBatch(64, 1);
  replay.sample(64, sampleOptions(config), out);
  const fromFirst = [...out.indices.subarray(0, out.size)].indexOf(0);
  t.is(out.returns[fromFirst], 2 + 0.5 * 4);
});

test('sandboxes apply live: a cap, an address, a sandbox added or removed; a second entry of a name, or a misspelt field, is reported', (t) => {
  const base = loadConfig({ dir: configDir({ 'default.json': {} }), env: {} }).config;
  const current: WardenConfig = {
    ...base,
    sandboxes: [
      { name: 'a', address: '127.0.0.1:1', tls: null },
      { name: 'b', address: '127.0.0.1:2', tls: null, maxEventsPerSecond: 100 },
    ],
  };
  const changed = planChange(current, {
    ...current,
    sandboxes: [
      { ...current.sandboxes[0]!, maxEventsPerSecond: 5_000 },
      { ...current.sandboxes[1]!, address: '127.0.0.1:3', maxEventsPerSecond: 0 },
    ],
  });
  t.deepEqual(changed.applied, [
    'sandboxes.0.maxEventsPerSecond',
    'sandboxes.1.address',
    'sandboxes.1.maxEventsPerSecond',
  ]);
  t.deepEqual(changed.requiresRestart, []);
  t.deepEqual(
    changed.config.sandboxes.map((s) => [s.address, s.maxEventsPerSecond]),
    [
      ['127.0.0.1:1', 5_000],
      ['127.0.0.1:3', 0],
    ],
  );
  const added = planChange(current, {
    ...current,
    sandboxes: [...current.sandboxes, { name: 'c', address: '127.0.0.1:4', tls: null }],
  });
  t.deepEqual(added.applied, ['sandboxes']);
  t.deepEqual(added.requiresRestart, []);
  t.deepEqual(
    added.config.sandboxes.map((s) => s.name),
    ['a', 'b', 'c'],
  );

  const twice = loadConfig({
    dir: configDir({
      'default.json': {
        sandboxes: [
          { name: 'a', address: '127.0.0.1:1' },
          { name: 'a', address: '127.0.0.1:2' },
        ],
      },
    }),
    env: {},
  });
  t.deepEqual(
    twice.config.sandboxes.map((s) => s.address),
    ['127.0.0.1:1'],
  );
  t.deepEqual(
    twice.warnings.map((w) => w.field),
    ['sandboxes.1.name'],
  );

  // A misspelt optional field of an entry is reported, not passed over as if it were not there.
  const misspelt = loadConfig({
    dir: configDir({
      'default.json': {
        sandboxes: [{ name: 'a', address: '127.0.0.1:1', maxEventsPerSeconds: 500 }],
      },
    }),
    env: {},
  });
  t.deepEqual(
    misspelt.warnings.map((w) => [w.field, w.message]),
    [['sandboxes.0.maxEventsPerSeconds', 'unknown field ignored']],
  );
  t.deepEqual(Object.keys(misspelt.config.sandboxes[0]!).sort(), ['address', 'name']);
});

test('property 38: a changed file is validated and applied without restart; restart-only fields say so; invalid sandbox or security settings refuse the reload', async (t) => {
  const dir = configDir({
    'default.json': { learning: { gamma: 0.9 }, replay: { capacity: 10_000 } },
  });
  const initial = loadConfig({ dir, env: {} });
  const logged: string[] = [];
  const logger = createLogger({ write: (line: string) => logged.push(line) }, 'warn');
  const watcher = new ConfigWatcher(initial, { dir, env: {} }, logger, 20).start();
  try {
    const change = new Promise<import('../../src/config/watch.ts').ConfigChange>((resolve) =>
      watcher.once('change', resolve),
    );
    writeFileSync(
      join(dir, 'default.json'),
      JSON.stringify({ learning: { gamma: 0.5, batchSize: -4 }, replay: { capacity: 20_000 } }),
    );
    const { applied, requiresRestart, config, warnings } = await change;
    t.deepEqual(applied, ['learning.gamma']);
    t.deepEqual(requiresRestart, ['replay.capacity']);
    t.is(config.learning.gamma, 0.5, 'applied');
    t.is(config.replay.capacity, 10_000, 'restart-only field keeps its running value');
    t.is(config.learning.batchSize, 64, 'invalid value fell back to the default');
    t.true(warnings.some((w) => w.field === 'learning.batchSize'));
    t.is(watcher.current.learning.gamma, 0.5);
    // What an operator sees on /metrics (alert WardenConfigInvalid).
    const metrics = metricsRegistry(new ActorSystem({ config: initial.config }), {
      config: () => watcher.status,
    });
    const scraped = async (name: string) =>
      Number((await metrics.scrape()).match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1]);
    t.is(await scraped('warden_config_fields_defaulted'), 1);
    t.is(await scraped('warden_config_restart_pending'), 1);
    t.is(await scraped('warden_config_reload_failures'), 0);

    // A broken file keeps the running configuration.
    const error = new Promise((resolve) => watcher.once('error', resolve));
    const broken = '{ "learning": ';
    writeFileSync(join(dir, 'default.json'), broken);
    await error;
    t.is(watcher.current.learning.gamma, 0.5);
    const warning = logged
      .map((l) => JSON.parse(l) as { err?: { message: string } })
      .find((l) => /not valid JSON/.test(l.err?.message ?? ''));
    t.truthy(warning, 'the reload warning names the broken file');
    const parser = (() => {
      try {
        return JSON.parse(broken) as never;
      } catch (e) {
        return (e as Error).message;
      }
    })();
    t.is(warning!.err!.message.split(parser).length, 2, "the parser's message once, not twice");
    t.is(await scraped('warden_config_reload_failures'), 1);
    t.is(await scraped('warden_config_fields_defaulted'), 1, 'still the last configuration read');

    // Sandboxes apply live, and never fall back: a typo in the list (which would default to no
    // sandbox at all, and drop every stream) is refused, and the running list stays.
    const lab = { name: 'lab', address: '127.0.0.1:50090' };
    const applied2 = new Promise<import('../../src/config/watch.ts').ConfigChange>((resolve) =>
      watcher.once('change', resolve),
    );
    writeFileSync(join(dir, 'default.json'), JSON.stringify({ sandboxes: [lab] }));
    t.deepEqual(
      (await applied2).config.sandboxes.map((x) => x.name),
      ['lab'],
    );
    const refused = new Promise<Error>((resolve) => watcher.once('error', resolve));
    writeFileSync(
      join(dir, 'default.json'),
      JSON.stringify({ sandboxes: [lab, { name: 'lab2', adress: '127.0.0.1:50091' }] }),
    );
    t.regex((await refused).message, /^invalid sandboxes: reload refused/);
    t.deepEqual(
      watcher.current.sandboxes.map((x) => x.name),
      ['lab'],
      'the running sandboxes stay',
    );
    t.is(await scraped('warden_config_reload_failures'), 2);
  } finally {
    watcher.close();
  }
});

test.serial(
  'config show prints no secret: DATABASE_URL and the webhook path stay out of it',
  async (t) => {
    const dir = tempDir('warden-show-');
    writeFileSync(
      join(dir, 'default.json'),
      JSON.stringify({ alerts: { webhook: 'https://hooks.example.com/services/T0/B0/SECRET' } }),
    );
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://warden:PASSWORD@db.example.com/warden';
    try {
      const { code, text } = await runCli(['config', 'show', '--config-dir', dir]);
      t.is(code, 0);
      const shown = JSON.parse(text) as WardenConfig;
      t.is(shown.alerts.webhook, 'https://hooks.example.com/…');
      t.is(shown.database.url, '<from DATABASE_URL>');
      t.false(/SECRET|PASSWORD/.test(text));
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  },
);
