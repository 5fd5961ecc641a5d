// Messages sent to each actor and not yet taken off its mailbox, in a SharedArrayBuffer: one Int32
// per actor (the system's actor names, sorted, so every thread agrees on the order). A sender adds
// one per message (`sent`); the actor's thread takes it off when the actor takes the message up, and
// main when it gives the message up as a dead letter (`settled`). The count includes what waits in
// a channel between threads, which no mailbox depth shows: a thread that falls behind (starved of
// a core, or a slow disk under the DB writer) grows it while its mailbox is still short.
//
// The receivers read it (receiver/index.ts): an actor on the data path with half a mailbox of
// messages pending holds every sandbox's stream, as the intake window does for the adapter, so the
// flood meets gRPC flow control instead of a full mailbox dropping messages already accepted.
//
// Counts only. A restarted thread starts its actors' counts at zero (what its predecessor held went
// with it), and a count never goes below zero (a message counted before such a reset and taken up
// after it).

export class BacklogCounts {
  readonly buffer: SharedArrayBuffer;
  readonly #counts: Int32Array;
  readonly #index: ReadonlyMap<string, number>;

  /** Over `buffer` (one slot per name, in sorted order); a new buffer when none is given. */
  constructor(actors: Iterable<string>, buffer?: SharedArrayBuffer) {
    const names = [...new Set(actors)].sort();
    this.buffer = buffer ?? new SharedArrayBuffer(4 * Math.max(1, names.length));
    this.#counts = new Int32Array(this.buffer);
    this.#index = new Map(names.map((name, i) => [name, i] as const));
  }

  /** The slot of an actor, or -1 for a name the system does not place (not counted). */
  slotOf(actor: string): number {
    const i = this.#index.get(actor);
    return i !== undefined && i < this.#counts.length ? i : -1;
  }

  /** A sender: one more message to `actor`. */
  sent(actor: string): void {
    const i = this.slotOf(actor);
    if (i >= 0) Atomics.add(this.#counts, i, 1);
  }

  /** The message left the count: taken up by the actor (its slot), or given up. */
  settled(slot: number): void {
    if (slot < 0) return;
    // Never below zero: compare-and-swap, which almost always succeeds the first time.
    for (;;) {
      const n = Atomics.load(this.#counts, slot);
      if (n <= 0 || Atomics.compareExchange(this.#counts, slot, n, n - 1) === n) return;
    }
  }

  /** A starting thread: its actors' mailboxes are new and empty. */
  reset(actor: string): void {
    const i = this.slotOf(actor);
    if (i >= 0) Atomics.store(this.#counts, i, 0);
  }

  pending(actor: string): number {
    const i = this.slotOf(actor);
    return i < 0 ? 0 : Atomics.load(this.#counts, i);
  }

  /** The first of `actors` with at least `limit` messages pending, or undefined. */
  over(actors: readonly string[], limit: number): string | undefined {
    for (const a of actors) if (this.pending(a) >= limit) return a;
    return undefined;
  }
}
