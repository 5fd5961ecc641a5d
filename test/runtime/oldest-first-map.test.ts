// OldestFirstMap: shift() always removes the oldest live entry, whatever mix of sets, deletes,
// re-inserts, clears and shifts came before (checked against an array model).

import test from 'ava';
import fc from 'fast-check';
import { OldestFirstMap } from '../../src/runtime/oldest-first-map.ts';

type Op =
  | { kind: 'set'; key: number; value: number }
  | { kind: 'delete'; key: number }
  | { kind: 'shift' }
  | { kind: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key: fc.nat(20),
      value: fc.integer(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(20) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('shift' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
);

test('shift removes the oldest entry in insertion order, as a plain list of entries would', (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const map = new OldestFirstMap<number, number>();
      let model: [number, number][] = [];
      for (const o of ops) {
        if (o.kind === 'set') {
          map.set(o.key, o.value);
          const at = model.findIndex(([k]) => k === o.key);
          if (at >= 0) model[at] = [o.key, o.value];
          else model.push([o.key, o.value]);
        } else if (o.kind === 'delete') {
          map.delete(o.key);
          model = model.filter(([k]) => k !== o.key);
        } else if (o.kind === 'clear') {
          map.clear();
          model = [];
        } else {
          const got = map.shift();
          const want = model.shift();
          if (JSON.stringify(got) !== JSON.stringify(want)) return false;
        }
        if (JSON.stringify([...map]) !== JSON.stringify(model)) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('a table bounded by evicting the oldest keeps the newest entries', (t) => {
  const map = new OldestFirstMap<string, number>();
  for (let i = 0; i < 50_000; i++) {
    map.set(`action-${i}`, i);
    if (map.size > 1_000) map.shift();
  }
  t.is(map.size, 1_000);
  t.deepEqual([...map.values()].slice(0, 2), [49_000, 49_001]);
  t.is(map.get('action-49999'), 49_999);
  t.false(map.has('action-48999'));
});
