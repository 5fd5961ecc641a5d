// Intake slots belong to sandbox names (shared/intake.ts): what a receiver claims, the adapter
// finds by the name in another view of the same buffer; a name keeps its slot when its receiver
// starts again or its sandbox comes back; names beyond MAX_SANDBOXES are not counted.

import test from 'ava';
import { IntakeCounts, MAX_SANDBOXES } from '../../src/runtime/shared/intake.ts';

test('a receiver claims its name a slot that the adapter finds by the name; counts stay apart', (t) => {
  const receivers = new IntakeCounts();
  const adapter = new IntakeCounts(receivers.buffer);
  t.is(adapter.slotOf('positive'), -1, 'no receiver claimed it yet');
  const positive = receivers.claim('positive');
  const negative = receivers.claim('negative');
  t.not(positive, negative);
  t.is(adapter.slotOf('positive'), positive);
  t.is(adapter.slotOf('negative'), negative);

  receivers.add(positive, 10);
  adapter.take(positive, 10, 4); // 4 wait for a decision
  t.is(receivers.inFlight(positive), 4);
  t.is(receivers.inFlight(negative), 0);
  adapter.decided(positive);
  t.is(receivers.inFlight(positive), 3);

  // A receiver started again (a restart, or its sandbox removed and added back) gets the same
  // slot, with what is still in flight for it.
  t.is(new IntakeCounts(receivers.buffer).claim('positive'), positive);
  t.is(new IntakeCounts(receivers.buffer).inFlight(positive), 3);
});

test('names beyond MAX_SANDBOXES get no slot and are not counted', (t) => {
  const intake = new IntakeCounts();
  const slots = new Set<number>();
  for (let i = 0; i < MAX_SANDBOXES; i++) slots.add(intake.claim(`sandbox-${i}`));
  t.is(slots.size, MAX_SANDBOXES);
  t.false(slots.has(-1));
  t.is(intake.claim('one-too-many'), -1);
  t.is(intake.add(-1, 5), 0, 'not counted');
  t.is(intake.claim('sandbox-7'), intake.slotOf('sandbox-7'), 'a name with a slot keeps it');
});
