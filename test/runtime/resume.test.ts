// What a stop leaves of its open stages (src/runtime/resume.ts) is taken up at the next start only
// when it is whole and fits: otherwise its episodes are kept to be stored as partial, and the rest
// is dropped so that no receiver resumes stages the adapter no longer has.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '../../src/runtime/logger.ts';
import {
  ADAPTER_FILE,
  EPISODES_FILE,
  openResume,
  receiverFile,
  STALE_EPISODES_FILE,
  sealResume,
  takeResumeFile,
  writeResumeFile,
} from '../../src/runtime/resume.ts';
import { testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const parts = (dir: string) => {
  writeResumeFile(dir, receiverFile('lab'), { open: [], ended: [] });
  writeResumeFile(dir, ADAPTER_FILE, { stages: [] });
  writeResumeFile(dir, EPISODES_FILE, { episodes: [{ episodeId: 'e1' }] });
};

test('a sealed set with the same state layout is taken up, once; each part is read by its actor and gone', (t) => {
  const dir = tempDir('warden-resume-');
  const config = testConfig({
    runtime: { resumeDir: dir },
    sandboxes: [{ name: 'lab', address: '127.0.0.1:1' }],
  });
  parts(dir);
  writeResumeFile(dir, receiverFile('gone'), { open: [], ended: [] });
  sealResume(config);
  t.is(openResume(config, silentLogger), 'resume');
  t.truthy(
    takeResumeFile(dir, receiverFile('lab')),
    "a configured sandbox's part stays for its receiver",
  );
  t.is(takeResumeFile(dir, receiverFile('gone')), undefined, 'one no longer configured is dropped');
  t.deepEqual(takeResumeFile(dir, EPISODES_FILE), { episodes: [{ episodeId: 'e1' }] });
  t.is(takeResumeFile(dir, EPISODES_FILE), undefined, 'taken once');
  t.false(readdirSync(dir).includes('complete.json'), 'the seal is used up at the start');
});

test('a set not sealed (a stop cut short) or written for another layout is not taken up: its episodes are kept to be stored as partial, the rest dropped', (t) => {
  for (const seal of [false, true]) {
    const dir = tempDir('warden-resume-');
    parts(dir);
    if (seal) sealResume(testConfig({ runtime: { resumeDir: dir }, telemetry: { stateDim: 80 } }));
    t.is(openResume(testConfig({ runtime: { resumeDir: dir } }), silentLogger), 'stale');
    t.deepEqual(readdirSync(dir).sort(), [STALE_EPISODES_FILE]);
  }
  const missing = tempDir('warden-resume-');
  writeResumeFile(missing, EPISODES_FILE, { episodes: [] });
  sealResume(testConfig({ runtime: { resumeDir: missing } }));
  t.is(
    openResume(testConfig({ runtime: { resumeDir: missing } }), silentLogger),
    'stale',
    'the adapter part missing',
  );
});

test('nothing written, nothing sealed; off, nothing read', (t) => {
  const dir = join(tempDir('warden-resume-'), 'resume');
  sealResume(testConfig({ runtime: { resumeDir: dir } }));
  t.false(existsSync(dir));
  t.is(openResume(testConfig({ runtime: { resumeDir: dir } }), silentLogger), 'none');
  t.is(openResume(testConfig(), silentLogger), 'none');
});

test('with fields chosen for encryption, each part is sealed on disk (no episode id in the clear) and read back with the key', (t) => {
  const dir = tempDir('warden-resume-');
  const key = Buffer.alloc(32, 7).toString('base64');
  const before = process.env.WARDEN_ENCRYPTION_KEYS;
  process.env.WARDEN_ENCRYPTION_KEYS = `k1:${key}`;
  try {
    const { security } = testConfig({ security: { encryption: { fields: ['episodeId'] } } });
    writeResumeFile(
      dir,
      EPISODES_FILE,
      { episodes: [{ episodeId: 'secret-sample-42' }] },
      security,
    );
    t.false(readFileSync(join(dir, EPISODES_FILE), 'utf8').includes('secret-sample-42'));
    t.deepEqual(takeResumeFile(dir, EPISODES_FILE, silentLogger, security), {
      episodes: [{ episodeId: 'secret-sample-42' }],
    });
    writeResumeFile(dir, EPISODES_FILE, { episodes: [] }, security);
    t.is(takeResumeFile(dir, EPISODES_FILE, silentLogger), undefined, 'unreadable without the key');
  } finally {
    if (before === undefined) delete process.env.WARDEN_ENCRYPTION_KEYS;
    else process.env.WARDEN_ENCRYPTION_KEYS = before;
  }
});
