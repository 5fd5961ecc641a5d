// A failure that repeats for every batch, logged once and then at most once an interval with how
// often it happened meanwhile. With the disk full, the DB writer refused every batch, several a
// second at full speed, and an error line with a stack for each (978 in 110 s) buried the rest of
// the log. The counts stay exact in the writer's statistics and metrics; only the lines thin out.

export interface Repeated {
  /** Occurrences since the last line logged, this one included. */
  readonly times: number;
  /** Rows they affected. */
  readonly rows: number;
}

export class Repeats {
  readonly #intervalMs: number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #times = 0;
  #rows = 0;

  constructor(intervalMs = 10_000) {
    this.#intervalMs = intervalMs;
  }

  /** Counts one occurrence; returns what to log now, or undefined while within the interval. */
  note(rows: number, now = performance.now()): Repeated | undefined {
    this.#times++;
    this.#rows += rows;
    if (now - this.#lastAt < this.#intervalMs) return undefined;
    const repeated = { times: this.#times, rows: this.#rows };
    this.#lastAt = now;
    this.#times = 0;
    this.#rows = 0;
    return repeated;
  }
}
