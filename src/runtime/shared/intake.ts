// Telemetry in flight per sandbox, between its receiver and the adapter, in a SharedArrayBuffer:
// three counts per sandbox (its slot, see below). The receiver adds each batch it hands on to
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
//
// Slots belong to sandbox names, not to places in the configuration: sandboxes come and go while
// Warden runs (`sandboxes` applies live). A receiver claims its name's slot when it starts (the
// one its name held before, or a free one: a 64-bit hash of the name in the slot's two OWNER
// words, set by compare-and-swap), and the adapter finds it by the name. A slot stays its name's
// for the life of the process, so events of a sandbox removed while the adapter still holds them
// are taken off its own counts, never off another's; MAX_SANDBOXES names fit.

const OWNER_LO = 0;
const OWNER_HI = 1;
const IN_FLIGHT = 2;
const HELD = 3;
const HANDOFFS = 4;
const WORDS = 5;
/** Sandbox names with a slot per process: the configuration's limit on `sandboxes`. */
export const MAX_SANDBOXES = 256;

/** FNV-1a over the name's UTF-16 units with two offsets: a 64-bit owner, never 0 in its low word. */
function ownerOf(name: string): readonly [number, number] {
  let lo = 0x811c9dc5;
  let hi = 0x050c5d1f;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    lo = Math.imul(lo ^ c, 0x01000193);
    hi = Math.imul(hi ^ c, 0x01000193);
  }
  return [lo === 0 ? 1 : lo, hi];
}

export class IntakeCounts {
  readonly buffer: SharedArrayBuffer;
  readonly #counts: Int32Array;
  /** Slots found or claimed by this thread (a slot never changes hands). */
  readonly #slots = new Map<string, number>();

  /** Over `buffer` (MAX_SANDBOXES slots); a new buffer when none is given. */
  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(4 * WORDS * MAX_SANDBOXES);
    this.#counts = new Int32Array(this.buffer);
  }

  /** The slot `sandbox`'s receiver claimed, or -1 for none (not counted). */
  slotOf(sandbox: string): number {
    const known = this.#slots.get(sandbox);
    if (known !== undefined) return known;
    const [lo, hi] = ownerOf(sandbox);
    for (let i = 0; i < this.#counts.length; i += WORDS)
      if (
        Atomics.load(this.#counts, i + OWNER_LO) === lo &&
        Atomics.load(this.#counts, i + OWNER_HI) === hi
      ) {
        this.#slots.set(sandbox, i / WORDS);
        return i / WORDS;
      }
    return -1;
  }

  /**
   * Receiver: its name's slot, claimed now if it has none; -1 when all MAX_SANDBOXES are taken
   * (the sandbox then streams without the intake window).
   */
  claim(sandbox: string): number {
    const found = this.slotOf(sandbox);
    if (found >= 0) return found;
    const [lo, hi] = ownerOf(sandbox);
    for (let i = 0; i < this.#counts.length; i += WORDS) {
      if (Atomics.compareExchange(this.#counts, i + OWNER_LO, 0, lo) !== 0) continue;
      // Counts left by nothing: a slot is claimed once, with its counts at zero.
      Atomics.store(this.#counts, i + OWNER_HI, hi);
      this.#slots.set(sandbox, i / WORDS);
      return i / WORDS;
    }
    return -1;
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
