// The telemetry validator: property 3 (malformed telemetry never throws an unexpected error and
// yields a complete event with defaults, counted per field), limits, snake_case, protobuf bytes.

import test from 'ava';
import fc from 'fast-check';
import { API_CATEGORIES, ARTIFACT_TYPES } from '../../src/messages/telemetry.ts';
import { DefaultsCounter } from '../../src/validation/defaults-counter.ts';
import {
  parseTelemetryJson,
  type TelemetryLimits,
  validateTelemetry,
} from '../../src/validation/telemetry.ts';
import { decodeTelemetryProto, sandboxProtoRoot } from '../../src/validation/telemetry-proto.ts';

const limits: TelemetryLimits = {
  maxEventBytes: 65_536,
  maxStringLength: 64,
  maxArrayLength: 16,
  maxDepth: 8,
};
const KNOWN_CODES = new Set(['WARDEN_INVALID_INPUT', 'WARDEN_INPUT_TOO_LARGE']);

function wellFormed(event: ReturnType<typeof validateTelemetry>): boolean {
  const count = (n: number) => Number.isInteger(n) && n >= 0 && n <= 1e12;
  const strs = (a: readonly string[]) =>
    a.length <= limits.maxArrayLength &&
    a.every((s) => typeof s === 'string' && s.length <= limits.maxStringLength);
  return (
    event.type === 'telemetry' &&
    typeof event.sandboxId === 'string' &&
    typeof event.episodeId === 'string' &&
    (event.stage === 1 || event.stage === 2) &&
    Number.isFinite(event.timestamp) &&
    [
      event.seq,
      event.syscallCount,
      event.fileReadCount,
      event.fileWriteCount,
      event.fileDeleteCount,
      event.networkConnections,
      event.bytesSent,
      event.bytesReceived,
      event.childProcesses,
      event.memoryUsage,
    ].every(count) &&
    event.cpuUsage >= 0 &&
    event.cpuUsage <= 100 &&
    [event.registryModification, event.privilegeEscalation, event.codeInjection].every(
      (b) => typeof b === 'boolean',
    ) &&
    strs(event.syscallTypes) &&
    strs(event.filePaths) &&
    strs(event.contactedIps) &&
    ARTIFACT_TYPES.includes(event.artifactType) &&
    (event.api === null ||
      ((API_CATEGORIES as readonly string[]).includes(event.api.category) && strs(event.api.args)))
  );
}

const fieldNames = [
  'sandboxId',
  'episode_id',
  'stage',
  'seq',
  'timestamp',
  'syscall_count',
  'syscallTypes',
  'fileReadCount',
  'file_paths',
  'contactedIps',
  'bytesSent',
  'cpuUsage',
  'memory_usage',
  'codeInjection',
  'artifactType',
  'api',
];

test('property 3: any JSON value as telemetry either yields a complete, in-range event or a clear rejection', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.jsonValue(),
        fc.dictionary(fc.constantFrom(...fieldNames), fc.jsonValue(), { maxKeys: 16 }),
        fc.record({
          api: fc.dictionary(fc.constantFrom('name', 'category', 'args'), fc.jsonValue()),
        }),
      ),
      (value) => {
        const counter = new DefaultsCounter();
        try {
          return wellFormed(validateTelemetry(value, { limits, counter, now: 1 }));
        } catch (error) {
          return (
            KNOWN_CODES.has((error as { code?: string }).code ?? '') &&
            (error as Error).message.length > 0
          );
        }
      },
    ),
    { numRuns: 2_000 },
  );
  t.pass();
});

test('property 3: any string as a JSONL line never crashes the parser', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.json()), (line) => {
      try {
        return wellFormed(parseTelemetryJson(line, { limits, counter: new DefaultsCounter() }));
      } catch (error) {
        return KNOWN_CODES.has((error as { code?: string }).code ?? '');
      }
    }),
    { numRuns: 2_000 },
  );
  t.pass();
});

test('missing and malformed fields get defaults and are counted per field', (t) => {
  const counter = new DefaultsCounter();
  const event = validateTelemetry(
    {
      sandbox_id: 'sb-1',
      episodeId: 'e-1',
      stage: 2,
      seq: 4,
      timestamp: 1_700_000_000,
      syscall_count: -3,
      cpuUsage: 250,
      codeInjection: 'yes',
      filePaths: ['a', 7, { x: 1 }],
      api: { name: 'NtWriteFile', category: 'file', args: ['h', 12] },
    },
    { limits, counter, now: 5 },
  );
  t.is(event.sandboxId, 'sb-1', 'snake_case accepted');
  t.is(event.timestamp, 1_700_000_000_000, 'seconds become milliseconds');
  t.is(event.syscallCount, 0);
  t.is(event.cpuUsage, 100);
  t.false(event.codeInjection);
  t.deepEqual(event.filePaths, ['a', '7']);
  t.deepEqual(event.api, { name: 'NtWriteFile', category: 'file', args: ['h', '12'] });
  const d = counter.defaults();
  t.is(d.syscallCount, 1);
  t.is(d['cpuUsage:clamped'], 1);
  t.is(d.codeInjection, 1);
  t.is(d['filePaths:dropped'], 1);
  t.is(d.bytesSent, 1, 'a missing field counts under its own name');
  t.is(d.sandboxId, undefined, 'a present field is not counted');
});

test('oversize, too deep, non-object and non-JSON input is rejected with a clear error and counted', (t) => {
  const counter = new DefaultsCounter();
  const opts = { limits, counter };
  t.throws(() => parseTelemetryJson(JSON.stringify({ pad: 'x'.repeat(70_000) }), opts), {
    code: 'WARDEN_INPUT_TOO_LARGE',
    message: /limit is 65536/,
  });
  let deep: unknown = 1;
  for (let i = 0; i < 20; i++) deep = { a: deep };
  t.throws(() => validateTelemetry(deep, opts), {
    code: 'WARDEN_INPUT_TOO_LARGE',
    message: /deeper than 8/,
  });
  // Parsed input (from protobuf, with no byte count) with too many values.
  t.throws(() => validateTelemetry({ syscallTypes: Array(100_001).fill('x') }, opts), {
    code: 'WARDEN_INPUT_TOO_LARGE',
    message: /more than 100000 values/,
  });
  t.throws(() => parseTelemetryJson('[1,2]', opts), {
    code: 'WARDEN_INVALID_INPUT',
    message: /must be an object/,
  });
  t.throws(() => parseTelemetryJson('{"a":', opts), {
    code: 'WARDEN_INVALID_INPUT',
    message: /not valid JSON/,
  });
  t.deepEqual(counter.rejected(), {
    'too-large': 1,
    'too-deep': 2,
    'not-an-object': 1,
    'not-json': 1,
  });
});

test('long strings and lists are cut to the limits and counted', (t) => {
  const counter = new DefaultsCounter();
  const event = validateTelemetry(
    { episodeId: 'e'.repeat(500), contactedIps: Array(100).fill('10.0.0.1') },
    { limits, counter },
  );
  t.is(event.episodeId.length, 64);
  t.is(event.contactedIps.length, 16);
  t.is(counter.defaults()['episodeId:truncated'], 1);
  t.is(counter.defaults()['contactedIps:truncated'], 1);
});

test('protobuf TelemetryEvent bytes decode to the same event; zero values are not counted as defects', (t) => {
  const type = sandboxProtoRoot().lookupType('warden.sandbox.v1.TelemetryEvent');
  const bytes = type
    .encode(
      type.fromObject({
        sandboxId: 'sb',
        episodeId: 'ep',
        stage: 2,
        seq: 9,
        timestampMs: 1_700_000_000_123,
        fileWriteCount: 3,
        contactedIps: ['1.2.3.4'],
        codeInjection: true,
        artifactType: 'dll',
        api: { name: 'connect', category: 'network', args: ['1.2.3.4', '443'] },
      }),
    )
    .finish();
  const counter = new DefaultsCounter();
  const event = decodeTelemetryProto(bytes, { limits, counter, now: 1 });
  t.like(event, {
    sandboxId: 'sb',
    episodeId: 'ep',
    stage: 2,
    seq: 9,
    timestamp: 1_700_000_000_123,
    fileWriteCount: 3,
    codeInjection: true,
    artifactType: 'dll',
    bytesSent: 0,
  });
  t.deepEqual(event.contactedIps, ['1.2.3.4']);
  t.deepEqual(event.api, { name: 'connect', category: 'network', args: ['1.2.3.4', '443'] });
  // A call without arguments (an empty list is left off the wire) is no defect either; a call
  // without a name is.
  const bare = (api: object) =>
    decodeTelemetryProto(
      type.encode(type.fromObject({ episodeId: 'ep', stage: 1, api })).finish(),
      {
        limits,
        counter,
        now: 1,
      },
    ).api;
  t.deepEqual(bare({ name: 'Sleep', category: 'system' }), {
    name: 'Sleep',
    category: 'system',
    args: [],
  });
  t.deepEqual(counter.defaults(), {});
  t.is(bare({ category: 'system' })?.name, 'unknown');
  t.deepEqual(counter.defaults(), { 'api.name': 1 });
});

test('property 3: random bytes as protobuf never crash the decoder', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try {
        return wellFormed(decodeTelemetryProto(bytes, { limits, counter: new DefaultsCounter() }));
      } catch (error) {
        return KNOWN_CODES.has((error as { code?: string }).code ?? '');
      }
    }),
    { numRuns: 3_000 },
  );
  t.pass();
});

test('the sandbox a receiver got an event from replaces whatever sandbox the event claims', (t) => {
  const counter = new DefaultsCounter();
  const claim = { sandboxId: 'someone-else', episodeId: 'ep', stage: 1 };
  t.is(
    validateTelemetry(claim, { limits, counter, sandboxId: 'sandbox-1' }).sandboxId,
    'sandbox-1',
  );
  t.is(
    validateTelemetry({ episodeId: 'ep', stage: 1 }, { limits, counter, sandboxId: 'sandbox-1' })
      .sandboxId,
    'sandbox-1',
  );
  t.is(
    validateTelemetry(claim, { limits, counter }).sandboxId,
    'someone-else',
    'without a receiver, the claim stands',
  );
});
