// Counts, per field, how often untrusted input was repaired with a default, and rejections by
// reason; the numbers operators see as "telemetry defaults applied per field".

export class DefaultsCounter {
  readonly #defaults = new Map<string, number>();
  readonly #rejected = new Map<string, number>();

  addDefault(field: string): void {
    this.#defaults.set(field, (this.#defaults.get(field) ?? 0) + 1);
  }

  addRejected(reason: string): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1);
  }

  defaults(): Record<string, number> {
    return Object.fromEntries(this.#defaults);
  }

  rejected(): Record<string, number> {
    return Object.fromEntries(this.#rejected);
  }

  get totalDefaults(): number {
    let n = 0;
    for (const v of this.#defaults.values()) n += v;
    return n;
  }
}
