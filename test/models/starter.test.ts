// The bundled starter model (src/models/starter.ts, data/starter-model/): a fresh `npm start`
// serves a trained policy from its first event; a models directory that has any version is
// never touched.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { STARTER_DIR, seedStarterModel } from '../../src/models/starter.ts';
import { latestVersion, listVersions, readMetadata, sha256 } from '../../src/models/store.ts';
import { tempStartConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const BIN = new URL('../../bin/warden.js', import.meta.url).pathname;
const env = { ...process.env, WARDEN_LOG_LEVEL: 'silent', WARDEN_ENV: 'dev' };

test('the bundled starter is a complete version: its file matches the sha256 of its metadata', (t) => {
  const version = latestVersion(STARTER_DIR)!;
  t.regex(version, /^v\d+$/);
  const metadata = readMetadata(STARTER_DIR, version);
  t.is(metadata.version, version);
  t.is(metadata.stateDim, 64);
  t.is(sha256(readFileSync(join(STARTER_DIR, `drl_agent_${version}.onnx`))), metadata.sha256);
});

test('seeding: an empty models directory gets the starter as latest; one with any version, or another state size, gets nothing', (t) => {
  const empty = join(tempDir('warden-starter-'), 'models');
  const version = seedStarterModel(empty, 64);
  t.is(version, latestVersion(STARTER_DIR));
  t.is(latestVersion(empty), version);
  t.deepEqual(listVersions(empty), [version]);
  t.is(readMetadata(empty, version!).sha256, readMetadata(STARTER_DIR, version!).sha256);
  t.is(seedStarterModel(empty, 64), undefined, 'a second start finds a version and copies nothing');

  const learned = tempDir('warden-starter-');
  writeFileSync(join(learned, 'drl_agent_v5.onnx'), 'a version of its own');
  t.is(seedStarterModel(learned, 64), undefined);
  t.deepEqual(readdirSync(learned), ['drl_agent_v5.onnx']);

  const wider = tempDir('warden-starter-');
  t.is(seedStarterModel(wider, 100), undefined, 'a 64-feature model cannot serve 100 features');
  t.deepEqual(readdirSync(wider), []);
});

test('npm start on an empty models directory serves the starter and detects from the start; --no-starter serves the rule table', (t) => {
  const start = (...args: string[]) => {
    // No export within the run: what is served is what the run started with.
    const { dir, configDir } = tempStartConfig('warden-start-', {
      learning: { exportEvery: 1_000_000 },
    });
    const r = spawnSync(
      process.execPath,
      [BIN, 'start', '--config-dir', configDir, '--duration', '6', ...args],
      { env, encoding: 'utf8', timeout: 90_000 },
    );
    return { ...r, models: join(dir, 'models') };
  };
  const seeded = start();
  t.is(seeded.status, 0, seeded.stderr);
  const version = latestVersion(STARTER_DIR)!;
  t.regex(
    seeded.stdout,
    new RegExp(`^warden: no model in .* yet: starting from the bundled ${version} `, 'm'),
  );
  t.is(latestVersion(seeded.models), version);
  const summary = /summary — .*stage-1 TPR ([\d.]+)% FPR ([\d.]+)% .* model (\S+)/.exec(
    seeded.stdout,
  );
  t.truthy(summary, seeded.stdout);
  const [, tpr, fpr, served] = summary!;
  t.is(served, version);
  t.true(Number(tpr) > Number(fpr) + 30, `TPR ${tpr}% against FPR ${fpr}%`);

  const rules = start('--no-starter');
  t.is(rules.status, 0, rules.stderr);
  t.notRegex(rules.stdout, /starting from the bundled/);
  t.false(existsSync(rules.models) && listVersions(rules.models).length > 0);
  t.regex(rules.stdout, /summary — .* model rules /);
});
