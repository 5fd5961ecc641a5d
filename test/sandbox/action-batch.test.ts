// The dispatcher's hand-written ActionBatch bytes are the ones protobufjs writes for the same
// actions (what grpc-js sent through proto-loader before), for any action, strings in any script
// included; values outside the contract's types take protobufjs's own path; a lone surrogate
// becomes U+FFFD (valid UTF-8), where protobufjs would write invalid bytes.

import test from 'ava';
import fc from 'fast-check';
import { type ActionRequestLike, encodeActionBatch } from '../../src/sandbox/action-batch.ts';
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
