// SPSC ring: order and completeness across real worker threads, in both directions, with
// backpressure (a ring much smaller than the stream) and batch handoff.

import { once } from 'node:events';
import test from 'ava';
import { SpscRing } from '../../src/runtime/shared/spsc-ring.ts';
import { spawnWorker } from '../../src/runtime/spawn.ts';

const fixture = (name: string) => new URL(`../fixtures/workers/${name}.ts`, import.meta.url);

test('worker → main: every item arrives once, in order, through a ring 64× smaller than the stream', async (t) => {
  const ring = SpscRing.create(1024, 2);
  const count = 65_536;
  const worker = spawnWorker(
    fixture('ring-producer'),
    { ring: ring.buffer, count, maxBatch: 300 },
    'producer',
  );
  const exited = once(worker, 'exit');
  let expected = 0;
  let ok = true;
  let halfOk = true;
  for (;;) {
    ring.drain(4096, (_i, i32, f32, off) => {
      if (i32[off] !== expected) ok = false;
      if (f32[off + 1] !== expected * 0.5) halfOk = false;
      expected++;
    });
    if ((await ring.waitForDataAsync(1_000)) === 'closed') break;
  }
  ring.drain(4096, () => expected++);
  await exited;
  t.true(ok, 'items in order');
  t.true(halfOk, 'float payload intact');
  t.is(expected, count, 'nothing lost or duplicated');
});

test('main → worker: a blocking consumer wakes for each batch and reads everything in order', async (t) => {
  const ring = SpscRing.create(256, 1);
  const worker = spawnWorker(fixture('ring-consumer'), { ring: ring.buffer }, 'consumer');
  const result = once(worker, 'message');
  const count = 20_000;
  let next = 0;
  while (next < count) {
    const base = next;
    const pushed = ring.pushBatch(Math.min(200, count - next), (i, i32, _f, off) => {
      i32[off] = base + i;
    });
    next += pushed;
    if (pushed === 0) await new Promise((r) => setImmediate(r));
  }
  ring.close();
  const [{ seen, batches }] = (await result) as [{ seen: number[]; batches: number }];
  await worker.terminate();
  t.is(seen.length, count);
  t.true(
    seen.every((v, i) => v === i),
    'in order',
  );
  t.true(batches < count, `handed over in batches (${batches} drains for ${count} items)`);
});

test('a full ring refuses more items instead of overwriting unread ones', (t) => {
  const ring = SpscRing.create(8, 1);
  t.is(
    ring.pushBatch(20, (i, i32, _f, off) => (i32[off] = i)),
    8,
  );
  t.is(
    ring.pushBatch(1, () => undefined),
    0,
  );
  const read: number[] = [];
  ring.drain(3, (_i, i32, _f, off) => read.push(i32[off]!));
  t.deepEqual(read, [0, 1, 2]);
  t.is(
    ring.pushBatch(5, (i, i32, _f, off) => (i32[off] = 100 + i)),
    3,
  );
  ring.drain(100, (_i, i32, _f, off) => read.push(i32[off]!));
  t.deepEqual(read, [0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102]);
});

test('indices wrap past 2^31 without losing items', (t) => {
  const ring = SpscRing.create(4, 1);
  const header = new Int32Array(ring.buffer, 0, 32);
  header[0] = 0x7ffffffe; // HEAD
  header[16] = 0x7ffffffe; // TAIL
  const out: number[] = [];
  for (let round = 0; round < 5; round++) {
    ring.pushBatch(3, (i, i32, _f, off) => (i32[off] = round * 10 + i));
    ring.drain(10, (_i, i32, _f, off) => out.push(i32[off]!));
  }
  t.deepEqual(out, [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42]);
});

test('bad layouts are refused with a clear error', (t) => {
  t.throws(() => SpscRing.create(1000, 1), { message: /power of two/ });
  t.throws(() => SpscRing.create(8, 0), { message: /slotWords/ });
});
