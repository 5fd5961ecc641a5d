// The dispatcher's hand-written ActionBatch bytes are the ones protobufjs writes for the same
// actions (what grpc-js sent through proto-loader before), for any action, strings in any script
// included; values outside the contract's types take protobufjs's own path; a lone surrogate
// becomes U+FFFD (valid UTF-8), where protobufjs would write invalid bytes.

import test from 'ava';
import fc from 'fast-check';
import {
  type ActionRequestLike,
  decodeActionBatch,
  encodeActionBatch,
} from '../../src/sandbox/action-batch.ts';
import { sandboxPackage } from '../../src/sandbox/grpc.ts';
import { MalformedError } from '../../src/sandbox/wire-reader.ts';
import { sandboxProtoRoot } from '../../src/validation/telemetry-proto.ts';

const batchType = () => sandboxProtoRoot().lookupType('warden.sandbox.v1.ActionBatch');
const protobufjs = (actions: readonly ActionRequestLike[]) =>
  Buffer.from(batchType().encode(batchType().fromObject({ actions })).finish());

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ maxLength: 20, unit: 'grapheme' }));
const float = fc.oneof(fc.float(), fc.double({ noNaN: true }), fc.constantFrom(0, -0, 1e-40));
const action: fc.Arbitrary<ActionRequestLike> = fc.record({
  actionId: text,
  episodeId: text,
  stage: fc.oneof(fc.constantFrom(1, 2), fc.nat()),
  seq: fc.oneof(fc.nat(200), fc.maxSafeNat()),
  action: fc.integer({ min: 0, max: 5 }),
  context: fc.record({
    modelVersion: text,
    qValues: fc.array(float, { maxLength: 8 }),
    confidence: float,
    source: fc.constantFrom('model', 'rules', 'exploration', ''),
    topFeatures: fc.array(
      fc.record({
        index: fc.oneof(fc.nat(100), fc.constant(0xffffffff)),
        name: text,
        value: float,
        weight: float,
      }),
      { maxLength: 6 },
    ),
  }),
});

test('byte for byte what protobufjs writes, for any batch of actions', (t) => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 12 }), (actions) => {
      t.deepEqual(encodeActionBatch(actions), protobufjs(actions));
    }),
    { numRuns: 500 },
  );
});

test('numbers outside the contract (negative, fractional) are encoded by protobufjs itself', (t) => {
  const base = {
    actionId: 'a',
    episodeId: 'e',
    stage: 1,
    seq: 3,
    action: 2,
    context: { modelVersion: 'v', qValues: [1], confidence: 0.5, source: 'model', topFeatures: [] },
  };
  for (const odd of [{ stage: -1 }, { seq: 1.5 }, { action: -3 }]) {
    const actions = [base, { ...base, ...odd }];
    t.deepEqual(encodeActionBatch(actions), protobufjs(actions));
    const decoded = batchType().toObject(batchType().decode(encodeActionBatch(actions)), {
      longs: Number,
    }) as { actions: { actionId: string }[] };
    t.is(decoded.actions.length, 2);
  }
});

test('a lone surrogate in an id becomes U+FFFD: the batch stays valid UTF-8', (t) => {
  const actions = [
    {
      actionId: 'x\uD800y',
      episodeId: 'é',
      stage: 1,
      seq: 0,
      action: 0,
      context: { modelVersion: 'v', qValues: [], confidence: 0, source: '', topFeatures: [] },
    },
  ];
  const decoded = batchType().toObject(batchType().decode(encodeActionBatch(actions))) as {
    actions: { actionId: string; episodeId: string }[];
  };
  t.is(decoded.actions[0]!.actionId, 'x\uFFFDy');
  t.is(decoded.actions[0]!.episodeId, 'é');
});

// The reference sandbox's side: decodeActionBatch reads what the sandbox needs of each action as
// proto-loader's deserializer did (fields absent on the wire stay undefined), from the dispatcher's
// bytes and from protobufjs's own (which leave unset fields and the context out).
const sparse = fc.record(
  {
    actionId: text,
    episodeId: text,
    stage: fc.constantFrom(0, 1, 2, 7),
    seq: fc.oneof(fc.nat(200), fc.maxSafeNat()),
    action: fc.integer({ min: 0, max: 5 }),
    context: fc.record(
      {
        modelVersion: text,
        qValues: fc.array(float, { maxLength: 8 }),
        confidence: fc.oneof(float, fc.constant(Number.NaN)),
        source: fc.constantFrom('model', 'rules', 'exploration', '', 'other'),
        topFeatures: fc.array(fc.record({ index: fc.nat(100), name: text }), { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

/** What the sandbox read through proto-loader, in decodeActionBatch's shape. */
function viaProtoLoader(bytes: Buffer) {
  const act = sandboxPackage().Sandbox.service.Act!;
  const batch = act.requestDeserialize(bytes) as { actions?: Record<string, never>[] };
  return (batch.actions ?? []).map((a: Record<string, unknown>) => {
    const c = a.context as Record<string, unknown> | undefined;
    const out: Record<string, unknown> = {};
    for (const k of ['actionId', 'episodeId', 'stage', 'seq', 'action'])
      if (a[k] !== undefined) out[k] = a[k];
    if (c) {
      const context: Record<string, unknown> = {
        qValueCount: (c.qValues as unknown[] | undefined)?.length ?? 0,
      };
      for (const k of ['modelVersion', 'confidence', 'source'])
        if (c[k] !== undefined) context[k] = c[k];
      out.context = context;
    }
    return out;
  });
}

test('the sandbox reads an ActionBatch as proto-loader did, sparse or whole', (t) => {
  fc.assert(
    fc.property(
      fc.array(action, { maxLength: 8 }),
      fc.array(sparse, { maxLength: 8 }),
      (whole, partial) => {
        for (const bytes of [
          encodeActionBatch(whole),
          protobufjs(partial as unknown as ActionRequestLike[]),
        ])
          t.deepEqual(decodeActionBatch(bytes), viaProtoLoader(bytes));
      },
    ),
    { numRuns: 400 },
  );
});

test('unpacked Q-values count too; bytes that are no ActionBatch throw a MalformedError', (t) => {
  // q_values (field 2 of the context) as three separate fixed32 fields instead of one packed run.
  const unpacked = Buffer.from([0x15, 0, 0, 0x80, 0x3f, 0x15, 0, 0, 0, 0x40, 0x15, 0, 0, 0, 0]);
  const request = Buffer.concat([Buffer.from([0x32, unpacked.length]), unpacked]);
  const bytes = Buffer.concat([Buffer.from([0x0a, request.length]), request]);
  t.deepEqual(decodeActionBatch(bytes), viaProtoLoader(bytes));
  t.is(decodeActionBatch(bytes)[0]!.context!.qValueCount, 3);
  for (const bad of [
    Buffer.from([0x0a, 0x05, 0x0a]), // length past the end
    Buffer.from([0x0a, 0x02, 0x18, 0x80]), // truncated varint
    Buffer.from([0x0a, 0x02, 0x0b, 0x00]), // field 1 as a group
  ])
    t.throws(() => decodeActionBatch(bad), { instanceOf: MalformedError });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (random) => {
      try {
        decodeActionBatch(Buffer.from(random));
      } catch (error) {
        t.true(error instanceof MalformedError, String(error));
      }
    }),
    { numRuns: 2_000 },
  );
});
