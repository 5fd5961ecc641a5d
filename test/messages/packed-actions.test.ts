// Decisions packed for the dispatcher come out as the adapter made them: every field, the
// context's Q-values and top features included, over any number of decisions and batches.

import test from 'ava';
import fc from 'fast-check';
import type { ActionDecision, ActionId } from '../../src/messages/action.ts';
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
