// Flat records (numbers, strings, booleans) crossing threads as one Float64Array and a table of
// their strings, each string once per batch: the decisions the adapter hands the episodes actor,
// and the sandboxes' feedback the dispatcher hands it. Cloned as objects, such a record costs
// 1.6-1.9 µs across the threads (node:v8 serialize + deserialize, batches of 32) — per decision,
// on the hot path, twice; packed, a fraction of it. Decisions with their whole context go packed
// their own way (packed-actions.ts).

export type FieldKind = 'number' | 'string' | 'boolean';

/** The strings of one packed batch, each once: intern() gives a string's index in `strings`. */
export class StringTable {
  readonly strings: string[] = [];
  readonly #index = new Map<string, number>();

  intern(s: string): number {
    let k = this.#index.get(s);
    if (k === undefined) {
      k = this.strings.push(s) - 1;
      this.#index.set(s, k);
    }
    return k;
  }
}

/** `count` records of T, row after row of the codec's fields. */
export interface PackedRecords<T> {
  readonly count: number;
  readonly numbers: Float64Array;
  readonly strings: readonly string[];
  /** Type only: what unpack() gives back. */
  readonly _record?: T;
}

/** Packs and unpacks one record type, described by its fields in a fixed order. */
export class RecordCodec<T extends object> {
  readonly #fields: readonly (readonly [string, FieldKind])[];

  constructor(fields: readonly (readonly [keyof T & string, FieldKind])[]) {
    this.#fields = fields;
  }

  pack(items: readonly T[]): PackedRecords<T> {
    const width = this.#fields.length;
    const numbers = new Float64Array(items.length * width);
    const table = new StringTable();
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Record<string, unknown>;
      for (let f = 0; f < width; f++) {
        const [name, kind] = this.#fields[f]!;
        const v = item[name];
        let n: number;
        if (kind === 'number') n = v as number;
        else if (kind === 'boolean') n = v ? 1 : 0;
        else n = table.intern(v as string);
        numbers[i * width + f] = n;
      }
    }
    return { count: items.length, numbers, strings: table.strings };
  }

  unpack(p: PackedRecords<T>): T[] {
    const width = this.#fields.length;
    const out: T[] = [];
    for (let i = 0; i < p.count; i++) {
      const record: Record<string, unknown> = {};
      for (let f = 0; f < width; f++) {
        const [name, kind] = this.#fields[f]!;
        const n = p.numbers[i * width + f]!;
        record[name] = kind === 'number' ? n : kind === 'boolean' ? n === 1 : p.strings[n];
      }
      out.push(record as T);
    }
    return out;
  }
}
