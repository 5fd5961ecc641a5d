// Single-producer/single-consumer ring of fixed-size slots in a SharedArrayBuffer.
// Hands over *batches*: the producer publishes many slots with one store to TAIL and wakes the
// consumer at most once, because waking a thread costs about 50 µs here.
//
//   Header: 32 Int32 words (128 bytes). HEAD and TAIL sit on separate 64-byte cache lines so the
//   producer's and the consumer's writes do not invalidate each other's line (false sharing).
//
//     word  0  HEAD              next index the consumer reads          (written by consumer)
//     word  1  PRODUCER_WAITING  1 while the producer blocks for space   (written by producer)
//     word 16  TAIL              next index the producer writes         (written by producer)
//     word 17  CONSUMER_WAITING  1 while the consumer blocks for data    (written by consumer)
//     word 18  CLOSED            1 once the producer has closed the ring
//     word 19  CAPACITY          slots, a power of two
//     word 20  SLOT_WORDS        32-bit words per slot
//
//   Slots: CAPACITY × SLOT_WORDS words after the header, viewed as Int32 and Float32 at once.
//   Indices run freely and wrap at 2^32; slot = index & (CAPACITY - 1); used = (TAIL - HEAD) | 0.
//
//          HEAD             TAIL
//           v                v
//     [ . | r | r | r | r | . | . | . ]     r = published, unread     . = free
//
// Memory order: slot contents are plain writes; the Atomics.store to TAIL (or HEAD) publishes them,
// and the other side's Atomics.load of the same word happens-after it (sequentially consistent).

import { LayoutError } from '../errors.ts';

const HEAD = 0;
const PRODUCER_WAITING = 1;
const TAIL = 16;
const CONSUMER_WAITING = 17;
const CLOSED = 18;
const CAPACITY = 19;
const SLOT_WORDS = 20;
const HEADER_WORDS = 32;

export type SlotWriter = (
  index: number,
  i32: Int32Array,
  f32: Float32Array,
  offset: number,
) => void;
export type SlotReader = (
  index: number,
  i32: Int32Array,
  f32: Float32Array,
  offset: number,
) => void;

export class SpscRing {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly slotWords: number;
  readonly #header: Int32Array;
  readonly #i32: Int32Array;
  readonly #f32: Float32Array;
  readonly #mask: number;

  static create(capacity: number, slotWords: number): SpscRing {
    if (!Number.isInteger(capacity) || capacity < 2 || (capacity & (capacity - 1)) !== 0) {
      throw new LayoutError(`ring capacity must be a power of two ≥ 2, got ${capacity}`);
    }
    if (capacity > 2 ** 30) throw new LayoutError(`ring capacity ${capacity} exceeds 2^30`);
    if (!Number.isInteger(slotWords) || slotWords < 1) {
      throw new LayoutError(`slotWords must be a positive integer, got ${slotWords}`);
    }
    const buffer = new SharedArrayBuffer((HEADER_WORDS + capacity * slotWords) * 4);
    const header = new Int32Array(buffer, 0, HEADER_WORDS);
    header[CAPACITY] = capacity;
    header[SLOT_WORDS] = slotWords;
    return new SpscRing(buffer);
  }

  /** Attaches to a ring created elsewhere (typically in another thread). */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER_WORDS);
    this.capacity = this.#header[CAPACITY]!;
    this.slotWords = this.#header[SLOT_WORDS]!;
    if (buffer.byteLength !== (HEADER_WORDS + this.capacity * this.slotWords) * 4) {
      throw new LayoutError('buffer size does not match the ring header');
    }
    this.#i32 = new Int32Array(buffer, HEADER_WORDS * 4);
    this.#f32 = new Float32Array(buffer, HEADER_WORDS * 4);
    this.#mask = this.capacity - 1;
  }

  /** Items published and not yet read. */
  get size(): number {
    return (Atomics.load(this.#header, TAIL) - Atomics.load(this.#header, HEAD)) | 0;
  }

  get closed(): boolean {
    return Atomics.load(this.#header, CLOSED) === 1;
  }

  /** Producer: writes up to `count` slots and publishes them at once. Returns how many fit. */
  pushBatch(count: number, write: SlotWriter): number {
    const h = this.#header;
    const tail = Atomics.load(h, TAIL); // only this thread writes TAIL
    const free = this.capacity - ((tail - Atomics.load(h, HEAD)) | 0);
    const n = Math.min(count, free);
    if (n <= 0) return 0;
    for (let i = 0; i < n; i++) {
      write(i, this.#i32, this.#f32, ((tail + i) & this.#mask) * this.slotWords);
    }
    Atomics.store(h, TAIL, (tail + n) | 0);
    // Dekker pairing with waitForData: we store TAIL then load the flag, the consumer stores the
    // flag then loads TAIL, so one of us always sees the other and no wake-up is lost.
    if (Atomics.load(h, CONSUMER_WAITING) === 1) Atomics.notify(h, TAIL);
    return n;
  }

  /** Consumer: reads up to `max` published slots in order and frees them. Returns how many. */
  drain(max: number, read: SlotReader): number {
    const h = this.#header;
    const head = Atomics.load(h, HEAD); // only this thread writes HEAD
    const available = (Atomics.load(h, TAIL) - head) | 0;
    const n = Math.min(available, max);
    if (n <= 0) return 0;
    for (let i = 0; i < n; i++) {
      read(i, this.#i32, this.#f32, ((head + i) & this.#mask) * this.slotWords);
    }
    Atomics.store(h, HEAD, (head + n) | 0);
    if (Atomics.load(h, PRODUCER_WAITING) === 1) Atomics.notify(h, HEAD);
    return n;
  }

  /** Consumer, worker threads only: blocks until data is published, the ring closes, or timeout. */
  waitForData(timeoutMs: number): 'ready' | 'timed-out' | 'closed' {
    const h = this.#header;
    const head = Atomics.load(h, HEAD);
    Atomics.store(h, CONSUMER_WAITING, 1);
    let result: 'ready' | 'timed-out' | 'closed' = 'ready';
    const tail = Atomics.load(h, TAIL);
    if (tail === head) {
      if (Atomics.load(h, CLOSED) === 1) result = 'closed';
      else if (Atomics.wait(h, TAIL, tail, timeoutMs) === 'timed-out') result = 'timed-out';
    }
    Atomics.store(h, CONSUMER_WAITING, 0);
    if (result !== 'closed' && this.size === 0 && this.closed) return 'closed';
    return result === 'timed-out' && this.size > 0 ? 'ready' : result;
  }

  /** Consumer, any thread (the main thread may not block): resolves when data may be there. */
  async waitForDataAsync(timeoutMs: number): Promise<'ready' | 'timed-out' | 'closed'> {
    const h = this.#header;
    const head = Atomics.load(h, HEAD);
    Atomics.store(h, CONSUMER_WAITING, 1);
    const tail = Atomics.load(h, TAIL);
    let result: 'ready' | 'timed-out' | 'closed' = 'ready';
    if (tail === head) {
      if (Atomics.load(h, CLOSED) === 1) result = 'closed';
      else {
        const waited = Atomics.waitAsync(h, TAIL, tail, timeoutMs);
        const outcome = waited.async ? await waited.value : waited.value;
        if (outcome === 'timed-out') result = 'timed-out';
      }
    }
    Atomics.store(h, CONSUMER_WAITING, 0);
    if (this.size > 0) return 'ready';
    return this.closed ? 'closed' : result;
  }

  /** Producer, worker threads only: blocks until at least one slot is free (backpressure). */
  waitForSpace(timeoutMs: number): 'ready' | 'timed-out' {
    const h = this.#header;
    Atomics.store(h, PRODUCER_WAITING, 1);
    const head = Atomics.load(h, HEAD);
    let result: 'ready' | 'timed-out' = 'ready';
    if (((Atomics.load(h, TAIL) - head) | 0) >= this.capacity) {
      result = Atomics.wait(h, HEAD, head, timeoutMs) === 'timed-out' ? 'timed-out' : 'ready';
    }
    Atomics.store(h, PRODUCER_WAITING, 0);
    return result;
  }

  /** Producer: no more data will come; a waiting consumer wakes and sees 'closed' once drained. */
  close(): void {
    Atomics.store(this.#header, CLOSED, 1);
    Atomics.notify(this.#header, TAIL);
  }
}
