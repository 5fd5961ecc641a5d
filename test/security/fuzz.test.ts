// Hostile files: CAPE reports, CSV sequences and model files, fuzzed. A report or a model comes from outside
// (a sandbox's output, a models directory an attacker may write to); whatever its bytes, the
// parser returns a result or one of Warden's clear errors — never a crash, never a hang, never
// unbounded memory. Model bytes also go through the real ONNX Runtime in the inference pool,
// which must refuse what it cannot use and keep serving.

import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import fc from 'fast-check';
import { InferencePool } from '../../src/actors/inference/pool.ts';
import { initParams } from '../../src/actors/learner/q-network.ts';
import { parseCapeReport } from '../../src/data/import-cape.ts';
import { parseCsv } from '../../src/data/import-csv.ts';
import { readPolicyParams } from '../../src/models/read-params.ts';
import {
  exportModel,
  metadataFile,
  modelFile,
  readMetadata,
  sha256,
} from '../../src/models/store.ts';
import { WardenError } from '../../src/runtime/errors.ts';
import { modelDraft, testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const REPORT = new URL(
  '../../data/cape-reports/cape__v2.2__d46900384c78863420fb3e297d0a2f743cd2b6b3f7f82bf64059a168e07aceb7.json.gz',
  import.meta.url,
).pathname;
const report = JSON.parse(
  (await import('node:zlib')).gunzipSync(readFileSync(REPORT)).toString('utf8'),
) as Record<string, unknown>;

/** A clear rejection: one of Warden's errors, with a code and a message that names the input. */
const clearRejection = (error: unknown) =>
  error instanceof WardenError && /^WARDEN_/.test(error.code) && error.message.length > 0;

type Json = unknown;
/** Replaces the value at a random path of `doc` (objects and arrays) with `value`. */
function mutate(doc: Json, path: number[], value: Json, remove: boolean): Json {
  if (path.length === 0 || typeof doc !== 'object' || doc === null) return value;
  const copy: Record<string, Json> | Json[] = Array.isArray(doc)
    ? [...doc]
    : { ...(doc as object) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return value;
  const key = keys[path[0]! % keys.length]!;
  if (remove && path.length === 1) {
    if (Array.isArray(copy)) copy.splice(Number(key), 1);
    else delete (copy as Record<string, Json>)[key];
    return copy;
  }
  (copy as Record<string, Json>)[key] = mutate(
    (copy as Record<string, Json>)[key],
    path.slice(1),
    value,
    remove,
  );
  return copy;
}

test('CAPE reports: any mutation of a real report imports or is refused clearly', (t) => {
  const base = parseCapeReport(readFileSync(REPORT), 'base.json.gz');
  t.true(base.trace.events.length > 0, 'the real report has calls');
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          path: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
          value: fc.jsonValue({ maxDepth: 3 }),
          remove: fc.boolean(),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      (mutations) => {
        let doc: Json = report;
        for (const m of mutations) doc = mutate(doc, m.path, m.value, m.remove);
        const bytes = Buffer.from(JSON.stringify(doc) ?? 'null');
        try {
          const r = parseCapeReport(bytes, 'mutated.json');
          return (
            r.trace.events.every((e, i) => e.seq === i && typeof e.api?.name === 'string') &&
            r.trace.episode.events === r.trace.events.length
          );
        } catch (error) {
          return clearRejection(error);
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('CAPE reports: random bytes, broken gzip and gzip bombs are clear errors', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4_096 }), fc.boolean(), (bytes, gzipped) => {
      const input = gzipped ? gzipSync(bytes) : bytes;
      try {
        parseCapeReport(input, 'random.bin');
        return true; // e.g. "1" is JSON: an empty episode
      } catch (error) {
        return clearRejection(error);
      }
    }),
    { numRuns: 300 },
  );
  const truncated = gzipSync(Buffer.from(JSON.stringify(report))).subarray(0, 500);
  t.throws(() => parseCapeReport(truncated, 'cut.json.gz'), {
    code: 'WARDEN_INVALID_INPUT',
    message: /cut\.json\.gz: broken gzip/,
  } as object);
  const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20));
  t.true(bomb.byteLength < 16 * 1024, 'a small file…');
  t.throws(() => parseCapeReport(bomb, 'bomb.json.gz', 'malicious', 1024 * 1024), {
    code: 'WARDEN_INPUT_TOO_LARGE',
    message: /larger than 1048576 bytes once decompressed/,
  } as object);
});

test('CSV sequences: any text imports row by row or is refused clearly', (t) => {
  const cell = fc.oneof(
    fc.constantFrom(
      '"',
      ',',
      '\n',
      '\r\n',
      '""',
      '__proto__',
      'constructor',
      'malware',
      '1',
      '0',
      ' ',
    ),
    fc.string({ maxLength: 12 }),
  );
  const csv = fc.array(cell, { maxLength: 80 }).map((cells) => cells.join(''));
  const names = { '0': 'NtOpenFile', '1': 'NtClose' };
  fc.assert(
    fc.property(csv, fc.boolean(), (text, withNames) => {
      try {
        const r = parseCsv(`t_0,t_1,malware\n${text}`, 'fuzz.csv', withNames ? { names } : {});
        return r.traces.every(
          (tr) =>
            tr.episode.events === tr.events.length &&
            tr.events.every((e) => typeof e.api?.name === 'string'),
        );
      } catch (error) {
        return clearRejection(error);
      }
    }),
    { numRuns: 500 },
  );
  const r = parseCsv('t_0,t_1,malware\n__proto__,1,1\n', 'proto.csv', { names });
  t.deepEqual(
    r.traces[0]?.events.map((e) => e.api?.name),
    ['api___proto__', 'NtClose'],
  );
  t.throws(() => parseCsv('a,b\n"unclosed,1\n', 'bad.csv'), {
    code: 'WARDEN_INVALID_INPUT',
    message: /bad\.csv: not a CSV file/,
  } as object);
});

const DIM = 32;
let modelBytes: Uint8Array;
test.before(async () => {
  const dir = tempDir('warden-fuzz-model-');
  const { metadata } = await exportModel(dir, initParams([DIM, 8, 6], false, 3), modelDraft());
  modelBytes = readFileSync(modelFile(dir, metadata.version));
});

const flips = fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), {
  minLength: 1,
  maxLength: 8,
});
const damaged = (bytes: Uint8Array, changes: { at: number; xor: number }[], cut: number) => {
  const copy = Uint8Array.from(bytes.subarray(0, Math.max(0, bytes.length - cut)));
  for (const c of changes) if (copy.length > 0) copy[c.at % copy.length]! ^= c.xor;
  return copy;
};

test('model files: random and damaged bytes give weights that fit their shapes, or a clear error', (t) => {
  t.is(readPolicyParams(modelBytes).dims.join(','), `${DIM},8,6`);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 2_048 }),
        fc
          .tuple(flips, fc.nat({ max: 64 }))
          .map(([changes, cut]) => damaged(modelBytes, changes, cut)),
      ),
      (bytes) => {
        try {
          const p = readPolicyParams(bytes);
          return (
            p.tensors.every((x) => x.every((v) => typeof v === 'number')) &&
            p.dims.every((d) => d > 0)
          );
        } catch (error) {
          return clearRejection(error);
        }
      },
    ),
    { numRuns: 400 },
  );
});

test('model files: damaged models with a matching checksum go to ONNX Runtime; each is served or refused, and the pool keeps answering', async (t) => {
  const dir = tempDir('warden-fuzz-pool-');
  const good = await exportModel(dir, initParams([DIM, 8, 6], false, 4), modelDraft());
  const pool = await InferencePool.start(
    testConfig({ telemetry: { stateDim: DIM }, inference: { workers: 1, ringCapacity: 256 } }),
  );
  t.teardown(() => pool.close());
  t.true(await pool.activate(dir, good.metadata.version));
  const samples = fc.sample(fc.tuple(flips, fc.nat({ max: 200 })), { numRuns: 12, seed: 42 });
  let served = 0;
  let refused = 0;
  for (const [i, [changes, cut]] of samples.entries()) {
    const version = `v${1000 + i}`;
    const bytes = damaged(modelBytes, changes, cut);
    // An attacker who can write both files: the checksum matches, only a signature would not.
    writeFileSync(modelFile(dir, version), bytes);
    writeFileSync(
      metadataFile(dir, version),
      JSON.stringify({
        ...readMetadata(dir, good.metadata.version),
        version,
        sha256: sha256(bytes),
      }),
    );
    if (await pool.activate(dir, version)) served++;
    else refused++;
    const d = await pool.decide(new Float32Array(DIM).fill(0.5));
    t.true(d.action >= 0 && d.action < 6 && d.qValues.length === 6, `decision after ${version}`);
  }
  t.is(served + refused, samples.length);
  t.true(refused > 0, `${refused} refused, ${served} served`);
});
