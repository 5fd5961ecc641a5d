// Telemetry as a receiver hands it to the adapter: only what the adapter reads (identity, the
// counters the state vector scales, the API name and category), in columns. A batch of 64
// validated TelemetryEvent objects cost 3.4 µs per event to structured-clone between threads (a
// third of the io thread's time at full speed); these columns cost 0.13 µs. The lists (file
// paths, contacted IPs, syscall types, API arguments) stay with the receiver: no actor after it
// reads them.
//
// Lifecycle events (episode started, stage outcome, stage failed) are few and stay objects; each
// carries `at`, the number of telemetry events before it in the batch, so the adapter sees the
// batch in the order the sandbox sent it.

import type { EpisodeLifecycle, Stage } from './episode.ts';
import type { SandboxEvent } from './index.ts';
import { StringTable } from './packed-records.ts';
import { API_CATEGORIES, type ApiCategory, type TelemetryEvent } from './telemetry.ts';

/** Column of each field in a row of `numbers`. */
export const COL = {
  stage: 0,
  seq: 1,
  syscallCount: 2,
  fileReadCount: 3,
  fileWriteCount: 4,
  fileDeleteCount: 5,
  networkConnections: 6,
  bytesSent: 7,
  bytesReceived: 8,
  childProcesses: 9,
  cpuUsage: 10,
  memoryUsage: 11,
  /** Bit 0 registry modification, bit 1 privilege escalation, bit 2 code injection. */
  flags: 12,
  /** Index into API_CATEGORIES, −1 when the event has no API call. */
  category: 13,
} as const;
export const COLUMNS = 14;
export const FLAG_REGISTRY = 1;
export const FLAG_PRIVILEGE = 2;
export const FLAG_INJECTION = 4;

const CATEGORY = new Map<ApiCategory, number>(API_CATEGORIES.map((c, i) => [c, i]));

export interface PackedTelemetry {
  readonly count: number;
  /** count × COLUMNS numbers, row i at [i·COLUMNS, (i+1)·COLUMNS). */
  readonly numbers: Float64Array;
  /** Per event two indexes into `strings`: its episode id, its API name (−1: no API call). */
  readonly refs: Int32Array;
  readonly strings: readonly string[];
}

export interface SequencedLifecycle {
  /** Telemetry events of the batch that come before this one. */
  readonly at: number;
  readonly event: EpisodeLifecycle;
}

/** Writes the columns of one validated event into out[off … off+COLUMNS). */
export function writeColumns(e: TelemetryEvent, out: Float64Array, off: number): void {
  out[off + COL.stage] = e.stage;
  out[off + COL.seq] = e.seq;
  out[off + COL.syscallCount] = e.syscallCount;
  out[off + COL.fileReadCount] = e.fileReadCount;
  out[off + COL.fileWriteCount] = e.fileWriteCount;
  out[off + COL.fileDeleteCount] = e.fileDeleteCount;
  out[off + COL.networkConnections] = e.networkConnections;
  out[off + COL.bytesSent] = e.bytesSent;
  out[off + COL.bytesReceived] = e.bytesReceived;
  out[off + COL.childProcesses] = e.childProcesses;
  out[off + COL.cpuUsage] = e.cpuUsage;
  out[off + COL.memoryUsage] = e.memoryUsage;
  out[off + COL.flags] =
    (e.registryModification ? FLAG_REGISTRY : 0) |
    (e.privilegeEscalation ? FLAG_PRIVILEGE : 0) |
    (e.codeInjection ? FLAG_INJECTION : 0);
  out[off + COL.category] = e.api ? (CATEGORY.get(e.api.category) ?? -1) : -1;
}

/** Builds one batch's columns; strings (episode ids, API names) are stored once per batch. */
export class TelemetryPacker {
  #numbers: Float64Array;
  #refs: Int32Array;
  readonly #strings = new StringTable();
  #count = 0;

  constructor(capacity = 64) {
    this.#numbers = new Float64Array(Math.max(1, capacity) * COLUMNS);
    this.#refs = new Int32Array(Math.max(1, capacity) * 2);
  }

  get count(): number {
    return this.#count;
  }

  add(e: TelemetryEvent): void {
    const i = this.#next();
    writeColumns(e, this.#numbers, i * COLUMNS);
    this.#refs[2 * i] = this.#strings.intern(e.episodeId);
    this.#refs[2 * i + 1] = e.api ? this.#strings.intern(e.api.name) : -1;
  }

  /** One validated event already in columns (`row`: COLUMNS numbers), as a wire decoder has it. */
  addColumns(row: Float64Array, episodeId: string, apiName: string | null): void {
    const i = this.#next();
    this.#numbers.set(row, i * COLUMNS);
    this.#refs[2 * i] = this.#strings.intern(episodeId);
    this.#refs[2 * i + 1] = apiName === null ? -1 : this.#strings.intern(apiName);
  }

  #next(): number {
    const i = this.#count++;
    if (i * COLUMNS >= this.#numbers.length) {
      const numbers = new Float64Array(this.#numbers.length * 2);
      numbers.set(this.#numbers);
      this.#numbers = numbers;
      const refs = new Int32Array(this.#refs.length * 2);
      refs.set(this.#refs);
      this.#refs = refs;
    }
    return i;
  }

  finish(): PackedTelemetry {
    const n = this.#count;
    return {
      count: n,
      numbers:
        n * COLUMNS === this.#numbers.length ? this.#numbers : this.#numbers.slice(0, n * COLUMNS),
      refs: n * 2 === this.#refs.length ? this.#refs : this.#refs.slice(0, n * 2),
      strings: this.#strings.strings,
    };
  }
}

export function episodeIdAt(p: PackedTelemetry, i: number): string {
  return p.strings[p.refs[2 * i]!]!;
}

export function apiNameAt(p: PackedTelemetry, i: number): string | null {
  const k = p.refs[2 * i + 1]!;
  return k < 0 ? null : p.strings[k]!;
}

export function stageAt(p: PackedTelemetry, i: number): Stage {
  return p.numbers[i * COLUMNS + COL.stage] === 2 ? 2 : 1;
}

export function seqAt(p: PackedTelemetry, i: number): number {
  return p.numbers[i * COLUMNS + COL.seq]!;
}

/** A batch of sandbox events in the receiver → adapter form. */
export function packEvents(events: readonly SandboxEvent[]): {
  telemetry: PackedTelemetry;
  lifecycle: SequencedLifecycle[];
} {
  const packer = new TelemetryPacker(events.length);
  const lifecycle: SequencedLifecycle[] = [];
  for (const e of events) {
    if (e.type === 'telemetry') packer.add(e);
    else lifecycle.push({ at: packer.count, event: e });
  }
  return { telemetry: packer.finish(), lifecycle };
}
