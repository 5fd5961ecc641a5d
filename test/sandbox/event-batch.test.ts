// The reference sandbox's pre-encoded Watch batches decode exactly like the same events encoded
// whole by protobufjs (what grpc-js did before through proto-loader).

import test from 'ava';
import fc from 'fast-check';
import {
  API_CATEGORIES,
  ARTIFACT_TYPES,
  type TelemetryEvent,
} from '../../src/messages/telemetry.ts';
import { type BatchItem, encodedEvents, encodeEventBatch } from '../../src/sandbox/event-batch.ts';
import { sandboxProtoRoot } from '../../src/validation/telemetry-proto.ts';

const count = fc.integer({ min: 0, max: 2 ** 40 });
const recorded: fc.Arbitrary<TelemetryEvent> = fc.record({
  type: fc.constant('telemetry' as const),
  sandboxId: fc.constant('recorded'),
  episodeId: fc.constant('recorded-episode'),
  stage: fc.constant(1 as const),
  seq: fc.constant(7),
  timestamp: fc.constant(1),
  syscallCount: count,
  syscallTypes: fc.array(fc.string(), { maxLength: 3 }),
  fileReadCount: count,
  fileWriteCount: count,
  fileDeleteCount: count,
  filePaths: fc.array(fc.string(), { maxLength: 3 }),
  networkConnections: count,
  contactedIps: fc.array(fc.ipV4(), { maxLength: 3 }),
  bytesSent: count,
  bytesReceived: count,
  childProcesses: count,
  cpuUsage: fc.double({ min: 0, max: 100, noNaN: true }),
  memoryUsage: count,
  registryModification: fc.boolean(),
  privilegeEscalation: fc.boolean(),
  codeInjection: fc.boolean(),
  artifactHash: fc.string({ maxLength: 64 }),
  artifactType: fc.constantFrom(...ARTIFACT_TYPES),
  api: fc.option(
    fc.record({
      name: fc.string({ minLength: 1 }),
      category: fc.constantFrom(...API_CATEGORIES),
      args: fc.array(fc.string(), { maxLength: 3 }),
    }),
    { nil: null },
  ),
}) as fc.Arbitrary<TelemetryEvent>;

const replay = fc.record({
  sandboxId: fc.string({ minLength: 1 }),
  episodeId: fc.string({ minLength: 1 }),
  stage: fc.constantFrom(1, 2),
  seq: fc.integer({ min: 0, max: 2 ** 40 }),
  timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
});

const lifecycle = fc.oneof(
  fc.record({
    episodeStarted: fc.record({
      sandboxId: fc.string(),
      episodeId: fc.string(),
      stage: fc.constantFrom(1, 2),
      timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
      cleaned: fc.boolean(),
    }),
  }),
  fc.record({
    stageOutcome: fc.record({
      episodeId: fc.string(),
      stage: fc.constantFrom(1, 2),
      eventsObserved: fc.nat(),
      groundTruth: fc.constantFrom(0, 1, 2),
      family: fc.string(),
    }),
  }),
);

test('pre-encoded batches decode to the events protobufjs encodes from the whole objects', (t) => {
  const root = sandboxProtoRoot();
  const batchType = root.lookupType('warden.sandbox.v1.EventBatch');
  const decode = (bytes: Uint8Array) =>
    batchType.toObject(batchType.decode(bytes), { longs: Number, enums: Number, defaults: true });
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.tuple(recorded, replay), lifecycle), { maxLength: 8 }),
      (entries) => {
        // Every other telemetry item comes with its pre-encoded part, as the sandbox passes it.
        const items: BatchItem[] = entries.map((e, i) =>
          Array.isArray(e)
            ? {
                telemetry: {
                  ...e[1],
                  event: e[0],
                  ...(i % 2 ? { encoded: encodedEvents([e[0]])[0]! } : {}),
                },
              }
            : e,
        );
        // What the sandbox wrote before: the whole event as an object, the replay's fields on top.
        const objects = entries.map((e) => {
          if (!Array.isArray(e)) return e;
          const { type: _t, timestamp: _ts, ...fields } = e[0];
          return { telemetry: { ...fields, ...e[1], api: fields.api ?? undefined } };
        });
        const expected = batchType.encode(batchType.fromObject({ events: objects })).finish();
        t.deepEqual(decode(encodeEventBatch(items)), decode(expected));
      },
    ),
    { numRuns: 300 },
  );
});
