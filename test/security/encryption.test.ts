// Encryption of chosen stored fields (AES-256-GCM, key ids for rotation): what reaches PostgreSQL
// and the journal is ciphertext, replays stay idempotent, authorised queries see plaintext, and a
// tampered value or a missing key is a clear error — on a real PostgreSQL.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import pg from 'pg';
import { type DbRecord, DbWriter } from '../../src/actors/db-writer/writer.ts';
import { Journal } from '../../src/db/journal.ts';
import type { AttackPattern } from '../../src/messages/pattern.ts';
import type { EpisodeTrajectory } from '../../src/messages/trajectory.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { FieldCipher } from '../../src/security/field-crypto.ts';
import { patternQueryClient } from '../../src/services/pattern-query.ts';
import { type RunningServices, startServices } from '../../src/services/server.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const key = () => randomBytes(32).toString('base64');
const OLD = `k2025:${key()}`;
const NEW = `k2026:${key()}`;

test('round trip for any text; equal values encrypt alike; the field is bound to the value', (t) => {
  const cipher = new FieldCipher(['episodeId', 'failureReason'], OLD, null);
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
      const sealed = cipher.protect('episodeId', text);
      return (
        sealed.startsWith('enc:v1:k2025:') &&
        cipher.reveal('episodeId', sealed) === text &&
        cipher.protect('episodeId', text) === sealed &&
        (text === '' || !sealed.includes(text) || text.length < 4)
      );
    }),
  );
  const sealed = cipher.protect('episodeId', 'C:\\Users\\bob\\evil.exe');
  t.throws(() => cipher.reveal('failureReason', sealed), { code: 'WARDEN_DECRYPTION' } as object);
  const body = Buffer.from(sealed.split(':')[3]!, 'base64url');
  body[20]! ^= 1;
  t.throws(() => cipher.reveal('episodeId', `enc:v1:k2025:${body.toString('base64url')}`), {
    message: /authentication failed/,
  });
  t.is(
    cipher.protect('attackType', 'injection'),
    'injection',
    'fields not chosen stay as they are',
  );
});

test('keys: a chosen field without a key, an unknown key id or a short key is a configuration error', (t) => {
  t.throws(() => new FieldCipher(['episodeId'], undefined, null), {
    code: 'WARDEN_CONFIG',
  } as object);
  t.throws(() => new FieldCipher(['episodeId'], OLD, 'k1999'), { message: /keyId "k1999"/ });
  t.throws(() => new FieldCipher(['episodeId'], 'k:c2hvcnQ=', null), { message: /32 bytes/ });
  const rotated = new FieldCipher(['episodeId'], `${NEW},${OLD}`, 'k2026');
  const before = new FieldCipher(['episodeId'], OLD, null).protect('episodeId', 'ep-1');
  t.is(rotated.reveal('episodeId', before), 'ep-1', 'old values decrypt after a rotation');
  t.regex(rotated.protect('episodeId', 'ep-1'), /^enc:v1:k2026:/);
  t.throws(() => new FieldCipher(['episodeId'], NEW, null).reveal('episodeId', before), {
    message: /key "k2025" is not in WARDEN_ENCRYPTION_KEYS/,
  });
});

let db: TestDatabase;
let services: RunningServices;
test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  await services?.stop();
  await db?.stop();
});

const pattern = (id: string, episodeId: string, attackType: string): AttackPattern => ({
  type: 'attack-pattern',
  patternId: id,
  features: [0.1, 0.2, 0.3, 0.4],
  action: 3,
  reward: 1,
  attackType,
  confidence: 0.8,
  timestamp: Date.UTC(2026, 0, 1),
  modelVersion: 'v1',
  episodeId,
  stage: 1,
});

test.serial(
  'encrypted fields reach PostgreSQL and the journal as ciphertext; queries see plaintext, across a key rotation',
  async (t) => {
    const fields = ['episodeId', 'attackType', 'failureReason', 'artifactHash'] as const;
    const journalDir = tempDir('warden-enc-journal-');
    const writerWith = (keys: string, keyId: string) =>
      new DbWriter(db.pool, new Journal<DbRecord>(journalDir, 1 << 20), silentLogger, {
        batchRows: 100,
        cipher: new FieldCipher([...fields], keys, keyId),
      });
    const before = writerWith(OLD, 'k2025');
    const secretEpisode = 'case-4711-host-FINANCE-PC';
    const trajectory: EpisodeTrajectory = {
      type: 'episode-trajectory',
      episodeId: secretEpisode,
      label: 'malicious',
      partial: true,
      failureReason: 'stage 2: crashed after writing C:\\Users\\alice\\payroll.xlsx',
      artifactHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      modelVersion: 'v1',
      totalReward: 0,
      startedAt: 1,
      endedAt: 2,
      steps: [],
    };
    t.is(await before.write([pattern('p1', secretEpisode, 'QakBot'), trajectory]), 'persisted');
    t.is(await before.write([pattern('p1', secretEpisode, 'QakBot'), trajectory]), 'persisted');
    const after = writerWith(`${NEW},${OLD}`, 'k2026');
    t.is(await after.write([pattern('p2', 'case-4712', 'QakBot')]), 'persisted');

    const dump = JSON.stringify(
      (
        await db.pool.query(
          'SELECT p.*, e.* FROM attack_patterns p FULL JOIN episodes e USING (episode_id)',
        )
      ).rows,
    );
    for (const plain of [secretEpisode, 'QakBot', 'alice', 'payroll', 'e3b0c442', 'case-4712'])
      t.false(dump.includes(plain), `${plain} is not stored in clear`);
    t.is(
      Number((await db.pool.query('SELECT count(*) AS n FROM attack_patterns')).rows[0].n),
      2,
      'a replay of the same rows does not duplicate (equal values encrypt alike)',
    );
    // The journal (database unreachable) holds ciphertext too.
    const unreachable = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 500 });
    unreachable.on('error', () => undefined);
    const queued = new DbWriter(
      unreachable,
      new Journal<DbRecord>(journalDir, 1 << 20),
      silentLogger,
      { batchRows: 100, cipher: new FieldCipher([...fields], OLD, 'k2025') },
    );
    t.is(await queued.write([pattern('p3', secretEpisode, 'QakBot'), trajectory]), 'queued');
    await unreachable.end();
    const journal = readFileSync(join(journalDir, 'journal.log'), 'utf8');
    t.true(journal.includes('enc:v1:k2025:'));
    for (const plain of [secretEpisode, 'QakBot', 'alice', 'e3b0c442'])
      t.false(journal.includes(plain), `${plain} is not in the journal in clear`);

    const token = 'reader-token-0123456789abcdef';
    services = await startServices({
      db: db.pool,
      log: silentLogger,
      config: testConfig({ database: { queryPort: 0 } }),
      env: { WARDEN_AUTH_TOKENS: `siem:read:${token}` },
      cipher: new FieldCipher([...fields], `${NEW},${OLD}`, 'k2026'),
    });
    const client = patternQueryClient(`127.0.0.1:${services.port}`, { token });
    t.teardown(() => client.close());
    const rows = await client.byAttackType('QakBot');
    t.deepEqual(
      rows.map((r) => [r.attackType, r.episodeId]).sort(),
      [
        ['QakBot', 'case-4711-host-FINANCE-PC'],
        ['QakBot', 'case-4712'],
      ],
      'rows under both keys are found and decrypted',
    );
    // The episode history: found by its plaintext artifact hash and id, shown decrypted.
    const [byArtifact] = await client.episodes({ artifactHash: trajectory.artifactHash! });
    t.like(byArtifact, {
      episodeId: secretEpisode,
      artifactHash: trajectory.artifactHash,
      failureReason: trajectory.failureReason,
    });
    t.is((await client.episodes({ episodeId: secretEpisode })).length, 1);
  },
);
