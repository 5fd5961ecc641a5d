// Decisions packed for the dispatcher come out as the adapter made them: every field, the
// context's Q-values and top features included, over any number of decisions and batches; the
// flat records packed for the episodes actor (decision summaries, feedback) likewise.

import test from 'ava';
import fc from 'fast-check';
import { DECISION_SUMMARIES } from '../../src/actors/adapter/index.ts';
import type { ActionDecision, ActionId } from '../../src/messages/action.ts';
import { ACTION_FEEDBACK } from '../../src/messages/feedback.ts';
import {
  ActionPacker,
  MAX_FEATURES,
  MAX_Q,
  unpackActions,
} from '../../src/messages/packed-actions.ts';

const text = fc.string({ maxLength: 30, unit: 'grapheme' });
const decision: fc.Arbitrary<ActionDecision> = fc
  .record({
    sandboxId: fc.constantFrom('positive', 'negative', 'lab-7'),
    episodeId: text,
    stage: fc.constantFrom(1 as const, 2 as const),
    seq: fc.nat(),
    action: fc.integer({ min: 0, max: 5 }).map((a) => a as ActionId),
    decidedAt: fc.integer({ min: 0, max: 2 ** 45 }),
    trace: fc.option(text, { nil: undefined }),
    context: fc.record({
      modelVersion: fc.constantFrom('rules', 'v1795681983172'),
      qValues: fc.array(fc.float({ noNaN: true }), { maxLength: MAX_Q }),
      confidence: fc.double({ min: 0, max: 1, noNaN: true }),
      source: fc.constantFrom('model' as const, 'rules' as const, 'exploration' as const),
      topFeatures: fc.array(
        fc.record({
          index: fc.nat(99),
          name: text,
          value: fc.double({ noNaN: true }),
          weight: fc.double({ noNaN: true }),
        }),
        { maxLength: MAX_FEATURES },
      ),
    }),
  })
  .map(({ trace, ...d }) => ({
    type: 'action-decision' as const,
    actionId: `${d.episodeId}/${d.stage}/${d.seq}`,
    ...d,
    ...(trace === undefined ? {} : { trace }),
  }));

test('unpack(pack(decisions)) gives the decisions back, batch after batch', (t) => {
  const packer = new ActionPacker();
  fc.assert(
    fc.property(fc.array(decision, { maxLength: 150 }), (decisions) => {
      for (const d of decisions) packer.add(d);
      const packed = packer.take();
      if (decisions.length === 0) return packed === undefined;
      // A batch crosses threads by structured clone.
      t.deepEqual(unpackActions(structuredClone(packed!)), decisions);
      return packer.count === 0;
    }),
    { numRuns: 300 },
  );
});

test('a decision with more Q-values or features than a row holds is refused, not cut', (t) => {
  const packer = new ActionPacker();
  const base: ActionDecision = {
    type: 'action-decision',
    actionId: 'e/1/0',
    sandboxId: 's',
    episodeId: 'e',
    stage: 1,
    seq: 0,
    action: 0,
    decidedAt: 1,
    context: { modelVersion: 'v', qValues: [], confidence: 1, source: 'model', topFeatures: [] },
  };
  t.throws(
    () =>
      packer.add({ ...base, context: { ...base.context, qValues: new Array(MAX_Q + 1).fill(0) } }),
    { instanceOf: RangeError },
  );
  t.is(packer.count, 0);
});

test('flat records (decision summaries, feedback) come back field for field after packing', (t) => {
  const summary = fc.record({
    episodeId: text,
    stage: fc.constantFrom(1 as const, 2 as const),
    seq: fc.nat(),
    action: fc.integer({ min: 0, max: 5 }).map((a) => a as ActionId),
    confidence: fc.double({ min: 0, max: 1, noNaN: true }),
    modelVersion: fc.constantFrom('rules', 'v1795681983172'),
    source: fc.constantFrom('model' as const, 'rules' as const, 'exploration' as const),
    decidedAt: fc.integer({ min: 0, max: 2 ** 45 }),
    latencyMs: fc.double({ min: 0, max: 1e4, noNaN: true }),
  });
  const feedback = fc.record({
    type: fc.constant('action-feedback' as const),
    actionId: text,
    sandboxId: fc.constantFrom('positive', 'negative'),
    episodeId: text,
    stage: fc.constantFrom(1 as const, 2 as const),
    action: fc.integer({ min: 0, max: 5 }).map((a) => a as ActionId),
    confirmed: fc.boolean(),
    applied: fc.boolean(),
    stageEnded: fc.boolean(),
    detail: text,
    timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
  });
  fc.assert(
    fc.property(
      fc.array(summary, { maxLength: 60 }),
      fc.array(feedback, { maxLength: 60 }),
      (s, f) => {
        t.deepEqual(DECISION_SUMMARIES.unpack(structuredClone(DECISION_SUMMARIES.pack(s))), s);
        t.deepEqual(ACTION_FEEDBACK.unpack(structuredClone(ACTION_FEEDBACK.pack(f))), f);
      },
    ),
    { numRuns: 200 },
  );
});
