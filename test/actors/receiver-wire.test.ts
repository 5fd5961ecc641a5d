// The receiver's EventBatch decoder (src/actors/receiver/wire.ts) against the path it replaces:
// proto-loader's decoding, validateTelemetry on each object and the packer. On generated batches
// — edge values, long strings and lists under small limits, unknown fields, lifecycle events among
// the telemetry — both give the same columns, strings, lifecycle events, defaults counted per
// field and rejections. Malformed bytes cost only the event they are in, and never throw.

import test from 'ava';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { decodeEventBatch } from '../../src/actors/receiver/wire.ts';
import { TelemetryPacker } from '../../src/messages/packed-telemetry.ts';
import { API_CATEGORIES, ARTIFACT_TYPES } from '../../src/messages/telemetry.ts';
import { sandboxPackage } from '../../src/sandbox/grpc.ts';
import { DefaultsCounter } from '../../src/validation/defaults-counter.ts';
import { type TelemetryLimits, validateTelemetry } from '../../src/validation/telemetry.ts';
import { sandboxProtoRoot } from '../../src/validation/telemetry-proto.ts';

type Wire = Record<string, unknown>;
const NOW = 1_795_000_000_000;

/** What the receiver did before: proto-loader's deserializer, then validate and pack each event. */
function reference(bytes: Buffer, limits: TelemetryLimits) {
  const counter = new DefaultsCounter();
  const opts = { limits, counter, absentIsDefault: true, now: NOW, sandboxId: 'sb' };
  const watch = sandboxPackage().Sandbox.service.Watch!;
  const batch = watch.responseDeserialize(bytes) as { events?: Wire[] };
  const packer = new TelemetryPacker(4);
  const lifecycle: { at: number; event: Wire }[] = [];
  let rejected = 0;
  for (const item of batch.events ?? []) {
    const kind = item.kind as string;
    const body = item[kind] as Wire | undefined;
    if (!body) continue;
    if (kind !== 'telemetry') {
      lifecycle.push({ at: packer.count, event: { kind, ...body } });
      continue;
    }
    // The one rule the old path lacked: a telemetry event over maxEventBytes is rejected.
    const size = sandboxProtoRoot()
      .lookupType('warden.sandbox.v1.TelemetryEvent')
      .encode(
        sandboxProtoRoot().lookupType('warden.sandbox.v1.TelemetryEvent').fromObject(body),
      ).len;
    if (size > limits.maxEventBytes) {
      counter.addRejected('too-large');
      rejected++;
      continue;
    }
    try {
      packer.add(validateTelemetry(body, opts));
    } catch {
      rejected++;
    }
  }
  return { telemetry: packer.finish(), lifecycle, counter, rejected };
}

function decoded(bytes: Buffer, limits: TelemetryLimits) {
  const counter = new DefaultsCounter();
  const opts = { limits, counter, absentIsDefault: true, now: NOW, sandboxId: 'sb' };
  const batch = decodeEventBatch(bytes, opts, (kind, wire) => ({ kind, ...wire }) as never);
  return {
    telemetry: batch.telemetry,
    lifecycle: batch.lifecycle as unknown as { at: number; event: Wire }[],
    counter,
    rejected: batch.rejected.length,
  };
}

const root = () => sandboxProtoRoot();
const encodeBatch = (events: Wire[]) => {
  const type = root().lookupType('warden.sandbox.v1.EventBatch');
  return Buffer.from(type.encode(type.fromObject({ events })).finish());
};

const text = fc.oneof(
  fc.constantFrom('', 'a', 'NtCreateFile', 'FILE', 'Exe', 'document', 'ünïcödé', '😀😀'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
);
const count = fc.oneof(
  fc.constantFrom(0, 1, 1e12, 1e12 + 1, 2 ** 53 - 1),
  fc.nat(),
  // uint64 above 2^53 (protobufjs takes a decimal string for it)
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }).map(String),
);
const list = fc.array(text, { maxLength: 7 });
const telemetryArb = fc.record(
  {
    sandboxId: text,
    episodeId: fc.oneof(fc.constantFrom('ep-1', 'ep-2', ''), text),
    stage: fc.oneof(fc.constantFrom(1, 2), fc.integer({ min: -3, max: 5 })),
    seq: count,
    timestampMs: fc.oneof(
      fc.constantFrom(0, -1, NOW, 1_700_000_000),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
    ),
    syscallCount: count,
    syscallTypes: list,
    fileReadCount: count,
    fileWriteCount: count,
    fileDeleteCount: count,
    filePaths: list,
    networkConnections: count,
    contactedIps: list,
    bytesSent: count,
    bytesReceived: count,
    childProcesses: count,
    cpuUsage: fc.oneof(
      fc.constantFrom(0, 100, -0.5, 100.5, Number.NaN, Number.POSITIVE_INFINITY, -0),
      fc.double(),
    ),
    memoryUsage: count,
    registryModification: fc.boolean(),
    privilegeEscalation: fc.boolean(),
    codeInjection: fc.boolean(),
    artifactHash: text,
    artifactType: fc.oneof(fc.constantFrom(...ARTIFACT_TYPES, 'EXE', 'Dll', 'elf', ''), text),
    api: fc.record(
      {
        name: fc.oneof(fc.constantFrom('NtCreateFile', 'connect', ''), text),
        category: fc.oneof(fc.constantFrom(...API_CATEGORIES, 'Registry', 'bogus', ''), text),
        args: list,
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const lifecycleArb = fc.oneof(
  fc
    .record({ episodeId: text, stage: fc.integer({ min: 0, max: 2 }), cleaned: fc.boolean() })
    .map((episodeStarted) => ({ episodeStarted: { ...episodeStarted, timestampMs: NOW } })),
  fc
    .record({ episodeId: text, eventsObserved: count, groundTruth: fc.integer({ min: 0, max: 2 }) })
    .map((stageOutcome) => ({ stageOutcome })),
  fc
    .record({ episodeId: text, reason: text, detail: text })
    .map((stageFailed) => ({ stageFailed })),
);
const eventArb = fc.oneof(
  { weight: 6, arbitrary: telemetryArb.map((telemetry) => ({ telemetry })) },
  { weight: 1, arbitrary: lifecycleArb },
  { weight: 1, arbitrary: fc.constant({}) }, // a SandboxEvent with nothing in it is skipped
);
const limitsArb = fc.record({
  maxEventBytes: fc.constantFrom(256, 400, 65_536),
  maxStringLength: fc.constantFrom(16, 1_024),
  maxArrayLength: fc.constantFrom(1, 3, 256),
  maxDepth: fc.constantFrom(2, 3, 8),
});

const same = (
  t: import('ava').ExecutionContext,
  a: ReturnType<typeof decoded>,
  b: ReturnType<typeof reference>,
) => {
  t.deepEqual(Array.from(a.telemetry.numbers), Array.from(b.telemetry.numbers));
  t.deepEqual(Array.from(a.telemetry.refs), Array.from(b.telemetry.refs));
  t.deepEqual(a.telemetry.strings, b.telemetry.strings);
  t.deepEqual(a.lifecycle, b.lifecycle);
  t.deepEqual(a.counter.defaults(), b.counter.defaults());
  t.deepEqual(a.counter.rejected(), b.counter.rejected());
  t.is(a.rejected, b.rejected);
};

test('a batch decodes to the same columns, strings, lifecycle events and counts as proto-loader + validateTelemetry', (t) => {
  let telemetry = 0;
  let defaults = 0;
  let rejected = 0;
  fc.assert(
    fc.property(fc.array(eventArb, { maxLength: 12 }), limitsArb, (events, limits) => {
      const bytes = encodeBatch(events);
      const a = decoded(bytes, limits);
      const b = reference(bytes, limits);
      telemetry += a.telemetry.count;
      defaults += a.counter.totalDefaults;
      rejected += a.rejected;
      same(t, a, b);
    }),
    { numRuns: 600 },
  );
  // The generator reaches every path: events kept, repaired and rejected.
  t.true(
    telemetry > 1_000 && defaults > 1_000 && rejected > 50,
    `${telemetry}/${defaults}/${rejected}`,
  );
});

test('unknown fields, repeated fields and a message field given twice follow protobuf as protobufjs does', (t) => {
  const limits = { maxEventBytes: 65_536, maxStringLength: 64, maxArrayLength: 8, maxDepth: 8 };
  const type = root().lookupType('warden.sandbox.v1.TelemetryEvent');
  const part = (o: Wire) => Buffer.from(type.encode(type.fromObject(o)).finish());
  // Two encodings of the same event concatenated: later scalars win, lists append, api replaced.
  const body = Buffer.concat([
    part({ episodeId: 'first', seq: 5, syscallTypes: ['a'], api: { name: 'A', args: ['x'] } }),
    Buffer.from([0xa8, 0x1f, 0x07]), // field 501, varint 7: unknown, skipped
    part({ episodeId: 'second', stage: 2, syscallTypes: ['b'], api: { category: 'FILE' } }),
  ]);
  const event = Buffer.concat([Buffer.from([0x12, body.length]), body]);
  const bytes = Buffer.concat([Buffer.from([0x0a, event.length]), event]);
  const a = decoded(bytes, limits);
  same(t, a, reference(bytes, limits));
  t.deepEqual(a.telemetry.strings, ['second', 'unknown']); // api without a name: 'unknown', counted
  t.deepEqual(a.counter.defaults(), { 'api.name': 1 });
});

test('an event with more values than one event may hold is rejected, as before', (t) => {
  const limits = { maxEventBytes: 16_777_216, maxStringLength: 64, maxArrayLength: 8, maxDepth: 8 };
  const bytes = encodeBatch([
    { telemetry: { episodeId: 'big', syscallTypes: Array.from({ length: 100_000 }, () => 'x') } },
    { telemetry: { episodeId: 'small', stage: 1 } },
  ]);
  const a = decoded(bytes, limits);
  same(t, a, reference(bytes, limits));
  t.is(a.telemetry.count, 1);
  t.deepEqual(a.counter.rejected(), { 'too-deep': 1 });
});

/** A batch of the given events, each framed by hand so one can be broken on its own. */
function framed(bodies: Buffer[]): Buffer {
  const w = protobuf.Writer.create();
  for (const b of bodies) w.uint32(10).bytes(b);
  return Buffer.from(w.finish());
}
const sandboxEvent = (o: Wire) => {
  const type = root().lookupType('warden.sandbox.v1.SandboxEvent');
  return Buffer.from(type.encode(type.fromObject(o)).finish());
};
const limits8 = { maxEventBytes: 65_536, maxStringLength: 64, maxArrayLength: 8, maxDepth: 8 };

test('a malformed event is rejected on its own; the events around it are kept', (t) => {
  const good = (id: string) => sandboxEvent({ telemetry: { episodeId: id, stage: 1, seq: 3 } });
  const broken = Buffer.from(good('bad'));
  broken[broken.length - 1] = 0x80; // the last varint now runs off the end
  const a = decoded(framed([good('one'), broken, good('two')]), limits8);
  t.deepEqual(a.telemetry.strings, ['one', 'two']);
  t.is(a.rejected, 1);
  t.deepEqual(a.counter.rejected(), { 'not-protobuf': 1 });
  // proto-loader could not take that batch apart at all (grpc-js failed the stream with it).
  t.throws(() => reference(framed([good('one'), broken, good('two')]), limits8));
});

test('a batch whose framing breaks keeps the events before the break and counts one rejection', (t) => {
  const good = sandboxEvent({ telemetry: { episodeId: 'kept', stage: 2 } });
  const bytes = Buffer.concat([framed([good]), Buffer.from([0x0a, 0x7f, 0x01, 0x02])]);
  const a = decoded(bytes, limits8);
  t.deepEqual(a.telemetry.strings, ['kept']);
  t.is(a.rejected, 1);
});

test('no bytes make the decoder throw: random and mutated batches', (t) => {
  const valid = encodeBatch([
    { telemetry: { episodeId: 'e', stage: 1, seq: 1, api: { name: 'n', category: 'file' } } },
    { stageOutcome: { episodeId: 'e', stage: 1, groundTruth: 1 } },
  ]);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc
          .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 4,
          })
          .map((edits) => {
            const b = Buffer.from(valid);
            for (const [i, v] of edits) b[i] = v;
            return b;
          }),
      ),
      (bytes) => {
        const a = decoded(bytes, limits8);
        // Every row it kept is a validated one.
        for (let i = 0; i < a.telemetry.count; i++) {
          const stage = a.telemetry.numbers[i * 14]!;
          t.true(stage === 1 || stage === 2);
        }
      },
    ),
    { numRuns: 2_000 },
  );
});
