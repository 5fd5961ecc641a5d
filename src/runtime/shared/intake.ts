// Telemetry in flight per sandbox, between its receiver and the adapter, in a SharedArrayBuffer:
// three Int32 per sandbox (its place in `sandboxes`). The receiver adds each batch it hands on to
// IN_FLIGHT and HANDOFFS; the adapter takes the hand-off off HANDOFFS when it reads it, takes off
// IN_FLIGHT what it is done with (decided, or skipped without a decision), and keeps the events
// it queued for a decision in HELD until they are decided. A receiver whose events reach
// telemetry.intakeWindow, or whose hand-offs reach its share of the adapter's mailbox (a sandbox
// sending one event per message), stops reading its stream until the adapter has worked them
// down to half: the sandbox then meets gRPC's flow control instead of Warden queueing without
// bound (or dropping at a full mailbox). Before, a sandbox streaming faster than events are
// decided (a flood, or a sandbox that never waits for actions) had the adapter's queue growing by
// about 100k events/s and Warden's memory by about 40 MB/s (6.5 GB after two and a half
// minutes), with no decisions for anyone meanwhile.
//
// Counts only: no event lives here. A restarted adapter takes its predecessor's HELD off
// IN_FLIGHT (those events went with it); a worker thread lost with its mailbox leaves a count too
// high, which the receiver notices (nothing done for a while) and forgets.

const IN_FLIGHT = 0;
const HELD = 1;
const HANDOFFS = 2;
const WORDS = 3;

export class IntakeCounts {
  readonly buffer: SharedArrayBuffer;
  readonly #counts: Int32Array;
  readonly #slots: ReadonlyMap<string, number>;

  /** Over `buffer` (one slot per sandbox, in this order); a new buffer when none is given. */
  constructor(sandboxes: readonly string[], buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(4 * WORDS * Math.max(1, sandboxes.length));
    this.#counts = new Int32Array(this.buffer);
    this.#slots = new Map(sandboxes.map((name, i) => [name, i] as const));
  }

  /** The sandbox's slot, or -1 for one not configured (not counted). */
  slotOf(sandbox: string): number {
    const slot = this.#slots.get(sandbox);
    return slot !== undefined && (slot + 1) * WORDS <= this.#counts.length ? slot : -1;
  }

  /** Receiver: one more hand-off of `n` events; returns the events in flight now. */
  add(slot: number, n: number): number {
    if (slot < 0) return 0;
    Atomics.add(this.#counts, slot * WORDS + HANDOFFS, 1);
    return Atomics.add(this.#counts, slot * WORDS + IN_FLIGHT, n) + n;
  }

  /** Adapter: of `n` events read from a hand-off, `queued` wait for a decision; the rest are done. */
  take(slot: number, n: number, queued: number): void {
    if (slot < 0) return;
    Atomics.sub(this.#counts, slot * WORDS + HANDOFFS, 1);
    if (n !== queued) Atomics.sub(this.#counts, slot * WORDS + IN_FLIGHT, n - queued);
    if (queued !== 0) Atomics.add(this.#counts, slot * WORDS + HELD, queued);
  }

  /** Adapter: a queued event was decided. */
  decided(slot: number): void {
    if (slot < 0) return;
    Atomics.sub(this.#counts, slot * WORDS + IN_FLIGHT, 1);
    Atomics.sub(this.#counts, slot * WORDS + HELD, 1);
  }

  /** A starting adapter: what an adapter before it held is gone, so no longer in flight. */
  dropHeld(): void {
    for (let i = 0; i < this.#counts.length; i += WORDS) {
      const held = Atomics.exchange(this.#counts, i + HELD, 0);
      if (held !== 0) Atomics.sub(this.#counts, i + IN_FLIGHT, held);
    }
  }

  inFlight(slot: number): number {
    return slot < 0 ? 0 : Atomics.load(this.#counts, slot * WORDS + IN_FLIGHT);
  }

  /** Hand-offs the adapter has not read yet (messages in its mailbox). */
  handoffs(slot: number): number {
    return slot < 0 ? 0 : Atomics.load(this.#counts, slot * WORDS + HANDOFFS);
  }

  /** Receiver: the events counted in flight were lost (a worker gone with its mailbox). */
  forget(slot: number): void {
    if (slot < 0) return;
    Atomics.store(this.#counts, slot * WORDS + IN_FLIGHT, 0);
    Atomics.store(this.#counts, slot * WORDS + HELD, 0);
    Atomics.store(this.#counts, slot * WORDS + HANDOFFS, 0);
  }
}
