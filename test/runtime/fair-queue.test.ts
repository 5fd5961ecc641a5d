// The adapter's fair queue: nothing lost or duplicated, FIFO within a flow, and a flooding tenant
// or flow gets one turn per round — the order is asserted, not timed.

import test from 'ava';
import fc from 'fast-check';
import { FairQueue } from '../../src/runtime/fair-queue.ts';

test('every item comes out exactly once, in order within its flow', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })), {
        maxLength: 400,
      }),
      fc.array(fc.boolean(), { maxLength: 400 }),
      (pushes, interleave) => {
        const q = new FairQueue<{ tenant: number; flow: number; n: number }>();
        const out: { tenant: number; flow: number; n: number }[] = [];
        let peekMismatch = false;
        pushes.forEach(([tenant, flow], n) => {
          q.push(`s${tenant}`, `e${flow}`, { tenant, flow, n });
          if (interleave[n]) {
            const peeked = q.peek();
            const item = q.shift();
            if (peeked !== item) peekMismatch = true;
            if (item) out.push(item);
          }
        });
        for (let item = q.shift(); item; item = q.shift()) out.push(item);
        if (peekMismatch || out.length !== pushes.length || q.size !== 0) return false;
        if (new Set(out.map((o) => o.n)).size !== pushes.length) return false;
        const last = new Map<string, number>();
        for (const o of out) {
          const k = `${o.tenant}/${o.flow}`;
          if ((last.get(k) ?? -1) > o.n) return false;
          last.set(k, o.n);
        }
        return true;
      },
    ),
  );
  t.pass();
});

test('a flooding sandbox gets one turn per round: a quiet one is served within its share', (t) => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 100_000; i++) q.push('flooder', 'ep-flood/1', `f${i}`);
  for (let i = 0; i < 10; i++) q.push('quiet', 'ep-q/1', `q${i}`);
  const first20 = Array.from({ length: 20 }, () => q.shift()!);
  t.deepEqual(
    first20.filter((s) => s.startsWith('q')),
    Array.from({ length: 10 }, (_, i) => `q${i}`),
    'all ten quiet events among the first twenty served',
  );
  t.is(q.size, 100_000 - 10);
});

test('within a sandbox, a flooding episode does not starve its other episodes', (t) => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 5_000; i++) q.push('s1', 'flood/1', 'flood');
  q.push('s1', 'other/1', 'other');
  q.push('s2', 'x/1', 'x');
  const firstFour = Array.from({ length: 4 }, () => q.shift());
  t.true(firstFour.includes('other'));
  t.true(firstFour.includes('x'));
});
