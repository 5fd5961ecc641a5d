// The `warden` command as a user runs it (a child process): a failure prints one clear line and
// exits non-zero, even after the embedded PostgreSQL was started and had to be stopped again.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { tempDir } from '../temp-dir.ts';

const BIN = new URL('../../bin/warden.js', import.meta.url).pathname;
const DATA_DIR = new URL('../../data/', import.meta.url).pathname;
const env = { ...process.env, WARDEN_LOG_LEVEL: 'silent', WARDEN_ENV: 'dev' };
/** `warden …` as a user runs it, to its end: exit status, stdout and stderr. */
const warden = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 120_000 });

test('start with its query port taken: a clear error, exit code 1, the database stopped again', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
  const port = (busy.address() as { port: number }).port;
  const dir = tempDir('warden-cli-');
  mkdirSync(join(dir, 'config'));
  writeFileSync(
    join(dir, 'config', 'default.json'),
    JSON.stringify({
      database: { dataDir: join(dir, 'pg'), queryPort: port },
      metrics: { port: 0 },
      models: { dir: join(dir, 'models') },
    }),
  );
  try {
    const r = spawnSync(
      process.execPath,
      [BIN, 'start', '--config-dir', join(dir, 'config'), '--duration', '2'],
      { env, encoding: 'utf8', timeout: 60_000 },
    );
    t.is(r.status, 1, r.stderr);
    t.regex(
      r.stderr,
      /^warden: error: services cannot listen on 127\.0\.0\.1:\d+ \(database\.queryPort\): address in use/,
    );
    t.regex(r.stdout, /embedded PostgreSQL on/, 'the database had started');
    const left = spawnSync('pgrep', ['-f', join(dir, 'pg')], { encoding: 'utf8' });
    if (left.error) t.log('pgrep is not installed: the leftover-process check is skipped');
    else t.is(left.stdout.trim(), '', 'no postgres process of this data directory is left running');
  } finally {
    busy.close();
  }
});

test('insecure or invalid security settings stop the start before anything runs', (t) => {
  const run = (config: object, ...args: string[]) => {
    const dir = tempDir('warden-cli-');
    mkdirSync(join(dir, 'config'));
    writeFileSync(
      join(dir, 'config', 'default.json'),
      JSON.stringify({ database: { dataDir: join(dir, 'pg') }, metrics: { port: 0 }, ...config }),
    );
    return spawnSync(process.execPath, [BIN, ...args, '--config-dir', join(dir, 'config')], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
  };
  const invalid = run(
    { security: { services: { tls: { certFile: 42 } } } },
    'start',
    '--duration',
    '1',
  );
  t.is(invalid.status, 1);
  t.regex(
    invalid.stderr,
    /^warden: error: security and sandbox settings must be valid, they never fall back: security\.services\.tls: /m,
  );
  t.notRegex(invalid.stdout, /embedded PostgreSQL on/);
  const remote = run(
    { sandboxes: [{ name: 'lab', address: '10.9.8.7:50051' }] },
    'run',
    '--duration',
    '1',
  );
  t.is(remote.status, 1);
  t.regex(
    remote.stderr,
    /^warden: error: sandbox lab: 10\.9\.8\.7 is not loopback and no TLS is configured/m,
  );
  const noKey = run(
    { security: { encryption: { fields: ['episodeId'] } } },
    'start',
    '--duration',
    '1',
  );
  t.is(noKey.status, 1);
  t.regex(
    noKey.stderr,
    /^warden: error: security\.encryption\.fields is set but WARDEN_ENCRYPTION_KEYS holds no key/m,
  );
});

test('exit codes say what happened: config check 0 / 2, validate of a missing file 1', (t) => {
  t.is(spawnSync(process.execPath, [BIN, 'config', 'check'], { env }).status, 0);
  const broken = tempDir('warden-cli-');
  writeFileSync(join(broken, 'default.json'), '{ nope');
  t.is(
    spawnSync(process.execPath, [BIN, 'config', 'check', '--config-dir', broken], { env }).status,
    2,
  );
  const missing = spawnSync(process.execPath, [BIN, 'validate', join(broken, 'missing.jsonl')], {
    env,
    encoding: 'utf8',
  });
  t.is(missing.status, 1);
  t.regex(missing.stderr, /^warden: error: .*missing\.jsonl: cannot read it: ENOENT/m);
  for (const command of [
    ['eval', '--model', broken, '--data', 'x.csv'],
    ['sandbox', '--duration', '1'],
  ]) {
    const bad = spawnSync(process.execPath, [BIN, ...command, '--split', 'held-out'], {
      env,
      encoding: 'utf8',
    });
    t.not(bad.status, 0, `${command[0]} --split held-out`);
    t.regex(bad.stderr, /--split <part>.*'held-out' is invalid\. expected train, test or all/);
  }
});

test('run --sandbox: two sandboxes of one name, or plaintext off loopback, stop the start with a clear error', (t) => {
  const run = (...sandboxes: string[]) =>
    spawnSync(
      process.execPath,
      [BIN, 'run', '--duration', '1', ...sandboxes.flatMap((s) => ['--sandbox', s])],
      { env, encoding: 'utf8', timeout: 60_000 },
    );
  const twice = run('lab=127.0.0.1:50061', 'lab=127.0.0.1:50062');
  t.is(twice.status, 1);
  t.regex(twice.stderr, /^warden: error: two sandboxes are named "lab"/m);
  const remote = run('lab=10.1.2.3:50061');
  t.is(remote.status, 1);
  t.regex(remote.stderr, /^warden: error: sandbox lab: 10\.1\.2\.3 is not loopback and no TLS/m);
  const malformed = run('lab');
  t.not(malformed.status, 0);
  t.regex(malformed.stderr, /expected name=host:port/);
});

test('output piped into a reader that went away (warden … | head): the command still ends cleanly, exit 0', async (t) => {
  const child = spawn(process.execPath, [BIN, 'sandbox', '--port', '0', '--duration', '2'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  // Like `head -1`: read the first chunk, then close the pipe.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.is(code, 0, stderr);
  t.notRegex(stderr, /EPIPE/);
});

test('status with no Warden listening: one clear line on stderr naming the address, exit 1', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const r = spawnSync(process.execPath, [BIN, 'status', '--server', `127.0.0.1:${port}`], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.is(r.status, 1);
  t.regex(
    r.stderr,
    new RegExp(
      `^warden: error: cannot reach Warden's services at 127\\.0\\.0\\.1:${port}: nothing listens there`,
      'm',
    ),
  );
  t.is(r.stdout, '');
});

test('sandbox on a port in use: one clear line and exit 1 (the process ends: nothing is left listening)', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
  const port = (busy.address() as { port: number }).port;
  try {
    const r = spawnSync(
      process.execPath,
      [BIN, 'sandbox', '--port', '0', '--negative-port', String(port), '--duration', '1'],
      { env, encoding: 'utf8', timeout: 60_000 },
    );
    t.is(r.status, 1);
    t.is(
      r.stderr,
      `warden: error: sandbox negative cannot listen on 127.0.0.1:${port}: address in use\n`,
    );
  } finally {
    busy.close();
  }
});

test('models keygen, sign, verify, list: a signed model verifies; a tampered one does not; rollback moves latest; list shows each version as it stands', async (t) => {
  const { exportModel } = await import('../../src/models/store.ts');
  const { initParams } = await import('../../src/actors/learner/q-network.ts');
  const { modelDraft } = await import('../helpers.ts');
  const dir = tempDir('warden-models-cli-');
  const draft = modelDraft();
  const first = await exportModel(dir, initParams([32, 8, 6], false, 1), draft);
  const second = await exportModel(dir, initParams([32, 8, 6], false, 2), draft);
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'models', ...args], { env, encoding: 'utf8' });
  const keys = join(dir, 'warden');
  t.is(cli('keygen', '--out', keys).status, 0);
  t.is(
    cli('verify', '--dir', dir, '--public-key', `${keys}.pub.pem`).status,
    1,
    'unsigned: refused',
  );
  t.is(cli('sign', '--dir', dir, '--key', `${keys}.key.pem`).status, 0);
  const ok = cli('verify', '--dir', dir, '--public-key', `${keys}.pub.pem`);
  t.is(ok.status, 0, ok.stdout);
  t.regex(ok.stdout, new RegExp(`${second.metadata.version}: sha256 ok, signature ok`));
  const bytes = readFileSync(join(dir, `drl_agent_${second.metadata.version}.onnx`));
  bytes[bytes.length - 5]! ^= 0xff;
  writeFileSync(join(dir, `drl_agent_${second.metadata.version}.onnx`), bytes);
  const bad = cli('verify', '--dir', dir, '--public-key', `${keys}.pub.pem`);
  t.is(bad.status, 1);
  t.regex(bad.stdout, /sha256 MISMATCH, signature INVALID/);
  t.is(cli('keygen', '--out', keys).status, 1, 'an existing key is never overwritten');
  const listed = cli('list', '--dir', dir);
  t.is(listed.status, 0);
  const [newest, oldest] = listed.stdout.split('\n');
  t.regex(newest!, new RegExp(`^\\* ${second.metadata.version} .* sha256 MISMATCH {2}signed$`));
  t.regex(oldest!, new RegExp(`^ {2}${first.metadata.version} .* sha256 ok {2}unsigned$`));
  t.is(cli('rollback', '--dir', dir).status, 0);
  t.is(readFileSync(join(dir, 'latest'), 'utf8').trim(), first.metadata.version);
  const after = JSON.parse(cli('list', '--dir', dir, '--json').stdout) as {
    version: string;
    latest: boolean;
  }[];
  t.deepEqual(
    after.map((v) => [v.version, v.latest]),
    [
      [second.metadata.version, false],
      [first.metadata.version, true],
    ],
    'newest first; latest follows the rollback',
  );
});

/** `warden train --data <data> --out <out> …args`, run to its end. */
const trainCli =
  (data: string, out: string) =>
  (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'train', '--data', data, '--out', out, ...args], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });

test('train --batch-size: used and recorded in the model metadata; an invalid size is a usage error; the model is a weight average unless --no-average', (t) => {
  const data = new URL('../../data/oliveira-balanced/api_calls.csv', import.meta.url).pathname;
  const out = tempDir('warden-train-');
  const run = trainCli(data, out);
  const ok = run('--episodes', '6', '--batch-size', '32', '--members', '1');
  t.is(ok.status, 0, ok.stderr);
  // Snapshots from a third of the episodes on, every 10, and the last one.
  t.regex(ok.stdout, /^model weights: mean of 2 snapshots, episodes 2–6$/m);
  const report = readdirSync(out).find((f) => f.endsWith('.html'))!;
  t.regex(readFileSync(join(out, report), 'utf8'), /mean of 2 snapshots, episodes 2–6/);
  const last = run('--episodes', '3', '--no-average', '--members', '1');
  t.is(last.status, 0, last.stderr);
  t.regex(last.stdout, /^model weights: last weights$/m);
  const late = run('--episodes', '3', '--average-from', '4', '--members', '1');
  t.is(late.status, 1);
  t.regex(late.stderr, /--average-from 4 is after the last of --episodes 3/);
  const metadata = readdirSync(out)
    .filter((f) => f.endsWith('_metadata.json'))
    .map((f) => JSON.parse(readFileSync(join(out, f), 'utf8')));
  t.deepEqual(metadata.map((m) => m.hyperParameters.batchSize).sort(), [32, 64]);
  const bad = run('--batch-size', '0');
  t.not(bad.status, 0);
  t.regex(bad.stderr, /--batch-size <n>.*'0' is invalid\. a whole number from 1 to 65536/);
});

test('train --members: the networks of several seeds distilled into the exported model, said on stdout and in the report', (t) => {
  const dir = tempDir('warden-members-');
  const csv = join(dir, 'calls.csv');
  const calls = ['CreateFileW', 'ReadFile', 'WriteFile', 'RegOpenKeyW', 'connect', 'send'];
  writeFileSync(
    csv,
    `t_0,t_1,t_2,malware\n${Array.from({ length: 60 }, (_, i) => `${calls[i % 6]},${calls[(i * 5) % 6]},${calls[((i + i / 6) % 6) | 0]},${i % 2}`).join('\n')}\n`,
  );
  const out = join(dir, 'models');
  const run = trainCli(csv, out);
  const ok = run('--episodes', '6', '--members', '2', '--seed', '4');
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /^member 1 \(seed 4\): trained with /m);
  t.regex(ok.stdout, /^member 2 \(seed 5\): trained with /m);
  t.regex(ok.stdout, /^ {2}distillation epoch 3: loss [\d.]+\ndistilled in [\d.]+ s$/m);
  const line =
    /^model weights: distilled from 2 members \(seeds 4–5; each the mean of 2 snapshots, episodes 2–6\) on \d+ states$/m;
  t.regex(ok.stdout, line);
  const report = readdirSync(out).find((f) => f.endsWith('.html'))!;
  t.regex(readFileSync(join(out, report), 'utf8'), /distilled from 2 members/);
  const metadata = readdirSync(out).find((f) => f.endsWith('_metadata.json'))!;
  t.is(JSON.parse(readFileSync(join(out, metadata), 'utf8')).trainingEpisodes, 12);
  const bad = run('--members', '0');
  t.not(bad.status, 0);
  t.regex(bad.stderr, /--members <n>.*'0' is invalid\. a whole number from 1 to 16/);
});

test('train and eval on a file without usable episodes: a clear error, exit 1; unreadable rows are counted', (t) => {
  const dir = tempDir('warden-baddata-');
  const csv = join(dir, 'calls.csv');
  writeFileSync(csv, 't_0,t_1,malware\nCreateFileW,ReadFile,2\n');
  const train = warden('train', '--data', csv, '--episodes', '3', '--out', join(dir, 'models'));
  t.is(train.status, 1);
  t.regex(
    train.stderr,
    /^warden: error: .*calls\.csv: no episodes \(1 unreadable, first at row 2: label "2"/m,
  );
  // Half readable: every good row is evaluated, the bad one is named on stderr.
  writeFileSync(
    csv,
    `t_0,t_1,malware\n${Array.from({ length: 40 }, (_, i) => `CreateFileW,${i % 2 ? 'ReadFile' : 'WriteFile'},${i % 2}`).join('\n')}\nRegOpenKeyW,ReadFile,maybe\n`,
  );
  const model = join(dir, 'model');
  t.is(
    warden('train', '--data', csv, '--episodes', '2', '--members', '1', '--out', model).status,
    0,
  );
  const evaluated = warden('eval', '--model', model, '--data', csv, '--split', 'all', '--json');
  t.is(evaluated.status, 0, evaluated.stderr);
  t.regex(evaluated.stderr, /1 unreadable rows or lines left out \(first at row 42: label "maybe"/);
  t.is(JSON.parse(evaluated.stdout)['agent (DQN)'].episodes, 40);
});

test('train on telemetry without both labels refuses before any model is written; eval of unlabelled episodes has nothing to score', (t) => {
  const dir = tempDir('warden-nolabel-');
  const file = join(dir, 'telemetry.jsonl');
  const episode = (id: string, label?: string) =>
    [
      { type: 'episode', episodeId: id, events: 3, ...(label ? { label } : {}) },
      ...['NtCreateFile', 'NtWriteFile', id].map((api, seq) => ({
        type: 'telemetry',
        episodeId: id,
        seq,
        syscallTypes: [api],
      })),
    ]
      .map((l) => JSON.stringify(l))
      .join('\n');
  const models = join(dir, 'models');
  for (const label of [undefined, 'malicious']) {
    const episodes = Array.from({ length: 8 }, (_, i) => episode(`e${i}`, label));
    writeFileSync(file, `${episodes.join('\n')}\n`);
    const train = warden('train', '--data', file, '--episodes', '3', '--out', models);
    t.is(train.status, 1, train.stdout);
    t.regex(
      train.stderr,
      /training side of the split holds \d+ malicious, 0 benign and \d+ unlabelled episodes; learning a verdict needs both labels/,
    );
  }
  t.throws(() => readdirSync(models), { code: 'ENOENT' }, 'no model was exported');
  writeFileSync(file, `${episode('e0')}\n${episode('e1')}\n`);
  const evaluated = warden(
    'eval',
    '--model',
    'data/starter-model',
    '--data',
    file,
    '--split',
    'all',
  );
  t.is(evaluated.status, 1);
  t.regex(
    evaluated.stderr,
    /none of the 2 episodes on the all side of the split is labelled malicious or benign/,
  );
});

test('eval --verdict-margin: the starter holds its verdicts for a lead over observing on, and observes longer', (t) => {
  const run = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [
        BIN,
        'eval',
        '--model',
        'data/starter-model',
        '--data',
        'data/oliveira-balanced/api_calls.csv',
        '--json',
        ...args,
      ],
      { env, encoding: 'utf8', timeout: 120_000 },
    );
  const greedy = run();
  const held = run('--verdict-margin', '0.3');
  t.is(greedy.status, 0, greedy.stderr);
  t.is(held.status, 0, held.stderr);
  const [g, h] = [greedy, held].map((r) => JSON.parse(r.stdout)['agent (DQN)']);
  t.is(g.episodes, h.episodes);
  t.true(
    h.meanEventsBeforeDecision > g.meanEventsBeforeDecision + 20,
    `${g.meanEventsBeforeDecision} → ${h.meanEventsBeforeDecision} events`,
  );
  const bad = run('--verdict-margin', '-1');
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--verdict-margin <q>.*'-1' is invalid\. expected a number ≥ 0/);
});

test('a DATABASE_URL that is not a URL, or points where nothing listens: one clear line naming where, never the password; exit 1', async (t) => {
  // A port that was free a moment ago: nothing listens there now.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const prune = (url: string) =>
    spawnSync(process.execPath, [BIN, 'db', 'prune', '--older-than', '30d'], {
      env: { ...env, DATABASE_URL: url },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const refused = prune(`postgres://warden:S3CRET@127.0.0.1:${port}/history`);
  t.is(refused.status, 1, refused.stderr);
  t.regex(
    refused.stderr,
    new RegExp(
      `^warden: error: cannot use PostgreSQL at 127\\.0\\.0\\.1:${port}/history \\(DATABASE_URL\\): connect ECONNREFUSED`,
    ),
  );
  const garbled = prune('S3CRET');
  t.is(garbled.status, 1, garbled.stderr);
  t.regex(
    garbled.stderr,
    /^warden: error: DATABASE_URL is not a PostgreSQL URL: expected postgres:\/\//,
  );
  t.false(/S3CRET/.test(refused.stderr + refused.stdout + garbled.stderr + garbled.stdout));
});

test('import cape --label, validate --min-minority, train --engine and patterns query --limit/--k take only what they can use: a usage error, exit 1, nothing written', (t) => {
  const dir = tempDir('warden-flags-');
  const report = join(
    DATA_DIR,
    'cape-reports',
    readdirSync(join(DATA_DIR, 'cape-reports')).find((f) => f.endsWith('.json.gz'))!,
  );
  // Before: the label was written as given ("bogus") and read back as unknown.
  const cape = warden('import', 'cape', report, '--label', 'bogus', '--out', join(dir, 'c.jsonl'));
  t.is(cape.status, 1);
  t.regex(
    cape.stderr,
    /--label <label>' argument 'bogus' is invalid\. expected malicious, benign or unknown/,
  );
  t.deepEqual(readdirSync(dir), [], 'nothing written');
  // Before: a share that is not a number disabled the check, and the file passed.
  const good = warden('import', 'cape', report, '--label', 'benign', '--out', join(dir, 'c.jsonl'));
  t.is(good.status, 0, good.stderr);
  for (const share of ['abc', '0.7']) {
    const validated = warden('validate', join(dir, 'c.jsonl'), '--min-minority', share);
    t.is(validated.status, 1);
    t.regex(
      validated.stderr,
      /--min-minority <share>' argument '[^']+' is invalid\. a share from 0 to 0\.5/,
    );
  }
  // Before: an unknown engine trained on the default one and exported a model.
  const engine = warden(
    'train',
    '--data',
    join(dir, 'c.jsonl'),
    '--engine',
    'bogus',
    '--out',
    join(dir, 'm'),
  );
  t.is(engine.status, 1);
  t.regex(
    engine.stderr,
    /--engine <engine>' argument 'bogus' is invalid\. expected auto, ort or tfjs/,
  );
  t.false(readdirSync(dir).includes('m'));
  const balanced = warden('validate', join(dir, 'c.jsonl'), '--min-minority', '0.2');
  t.is(balanced.status, 1, 'one label only: below a 20% minority');
  t.regex(balanced.stdout, /label balance 0 malicious \/ 1 benign is below 20% minority/);
  // Before: a count that is not a number asked the running Warden for its default (100, 10).
  for (const [flag, value] of [
    ['--limit', 'abc'],
    ['--k', '0'],
  ]) {
    const query = warden('patterns', 'query', '--type', 'injection', flag!, value!);
    t.is(query.status, 1);
    t.regex(
      query.stderr,
      new RegExp(`${flag} <n>' argument '${value}' is invalid\\. a whole number ≥ 1`),
    );
  }
});
