// Turns untrusted telemetry (JSON text, parsed objects, protobuf bytes) into TelemetryEvent.
// Missing or malformed fields become defaults and are counted per field (requirement 1.3,
// property 3); input that is too large, too deep or not an object is rejected with a clear error.
// Keys are accepted in camelCase or the seed's snake_case.

import type { Stage } from '../messages/episode.ts';
import {
  API_CATEGORIES,
  type ApiCall,
  type ApiCategory,
  ARTIFACT_TYPES,
  type ArtifactType,
  type TelemetryEvent,
} from '../messages/telemetry.ts';
import { InputTooLargeError, InvalidInputError } from '../runtime/errors.ts';
import type { DefaultsCounter } from './defaults-counter.ts';

export interface TelemetryLimits {
  readonly maxEventBytes: number;
  readonly maxStringLength: number;
  readonly maxArrayLength: number;
  readonly maxDepth: number;
}

export interface ValidateOptions {
  readonly limits: TelemetryLimits;
  readonly counter: DefaultsCounter;
  /** Default timestamp for events that carry none (the receive time). */
  readonly now?: number;
  /** Protobuf leaves zero values out: an absent field is then a value, not a defect. */
  readonly absentIsDefault?: boolean;
  /** The sandbox the event arrived from (a receiver knows it): replaces the event's own claim. */
  readonly sandboxId?: string;
}

/** Largest count we believe; anything above is clamped and counted (an attacker controls these). */
export const MAX_COUNT = 1e12;
/** Most values (fields, list items) one event may hold. */
export const MAX_NODES = 100_000;

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

const snakeNames = new Map<string, string>();
/** camelCase → snake_case, computed once per field name (this runs for every absent field). */
const snake = (camel: string) => {
  let name = snakeNames.get(camel);
  if (name === undefined) {
    name = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    snakeNames.set(camel, name);
  }
  return name;
};

function pick(raw: Raw, key: string): unknown {
  if (Object.hasOwn(raw, key)) return raw[key];
  const alt = snake(key);
  return Object.hasOwn(raw, alt) ? raw[alt] : undefined;
}

/**
 * Rejects nesting deeper than maxDepth or more than MAX_NODES values. Recursion is bounded by
 * maxDepth (the check throws before going deeper), and nothing is allocated per value: this runs
 * for every event a receiver takes.
 */
function checkShape(value: unknown, maxDepth: number): void {
  const seen = { nodes: 0 };
  visit(value, 1, maxDepth, seen);
}

function visit(v: unknown, depth: number, maxDepth: number, seen: { nodes: number }): void {
  if (++seen.nodes > MAX_NODES)
    throw new InputTooLargeError(`telemetry event has more than ${MAX_NODES} values`);
  if (typeof v !== 'object' || v === null) return;
  if (depth > maxDepth)
    throw new InputTooLargeError(`telemetry event nests deeper than ${maxDepth} levels`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) visit(v[i], depth + 1, maxDepth, seen);
    return;
  }
  const o = v as Raw;
  for (const key in o) if (Object.hasOwn(o, key)) visit(o[key], depth + 1, maxDepth, seen);
}

class FieldReader {
  constructor(
    readonly raw: Raw,
    readonly opts: ValidateOptions,
    readonly prefix = '',
  ) {}

  #defaulted(field: string, value: unknown): void {
    if (value === undefined && this.opts.absentIsDefault) return;
    this.opts.counter.addDefault(this.prefix + field);
  }

  string(field: string, fallback: string): string {
    const v = pick(this.raw, field);
    if (typeof v === 'string' && v.length > 0) return this.#cap(field, v);
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    this.#defaulted(field, v);
    return fallback;
  }

  #cap(field: string, v: string): string {
    const max = this.opts.limits.maxStringLength;
    if (v.length <= max) return v;
    this.opts.counter.addDefault(`${this.prefix}${field}:truncated`);
    return v.slice(0, max);
  }

  count(field: string): number {
    const v = pick(this.raw, field);
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
      this.#defaulted(field, v);
      return 0;
    }
    if (n > MAX_COUNT) {
      this.opts.counter.addDefault(`${this.prefix}${field}:clamped`);
      return MAX_COUNT;
    }
    return Math.floor(n);
  }

  ranged(field: string, min: number, max: number, fallback: number): number {
    const v = pick(this.raw, field);
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      this.#defaulted(field, v);
      return fallback;
    }
    if (n < min || n > max) {
      this.opts.counter.addDefault(`${this.prefix}${field}:clamped`);
      return n < min ? min : max;
    }
    return n;
  }

  boolean(field: string): boolean {
    const v = pick(this.raw, field);
    if (typeof v === 'boolean') return v;
    if (v === 0 || v === 1) return v === 1;
    if (v === 'true' || v === 'false') return v === 'true';
    this.#defaulted(field, v);
    return false;
  }

  strings(field: string): string[] {
    const v = pick(this.raw, field);
    if (!Array.isArray(v)) {
      this.#defaulted(field, v);
      return [];
    }
    const { maxArrayLength } = this.opts.limits;
    if (v.length > maxArrayLength) this.opts.counter.addDefault(`${this.prefix}${field}:truncated`);
    const out: string[] = [];
    let dropped = false;
    for (const item of v.slice(0, maxArrayLength)) {
      if (typeof item === 'string') out.push(this.#cap(field, item));
      else if (typeof item === 'number' || typeof item === 'boolean') out.push(String(item));
      else dropped = true;
    }
    if (dropped) this.opts.counter.addDefault(`${this.prefix}${field}:dropped`);
    return out;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], fallback: T): T {
    const v = pick(this.raw, field);
    const s = typeof v === 'string' ? v.toLowerCase() : v;
    if ((allowed as readonly unknown[]).includes(s)) return s as T;
    this.#defaulted(field, v);
    return fallback;
  }

  stage(): Stage {
    const v = pick(this.raw, 'stage');
    if (v === 1 || v === 2) return v;
    if (v === '1' || v === '2') return Number(v) as Stage;
    if (v === 'STAGE_POSITIVE') return 1;
    if (v === 'STAGE_NEGATIVE') return 2;
    this.opts.counter.addDefault(`${this.prefix}stage`);
    return 1;
  }

  timestamp(fallback: number): number {
    const v = pick(this.raw, 'timestamp') ?? pick(this.raw, 'timestampMs');
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) {
      // Seconds (CAPE, Unix tools) vs milliseconds: anything before 2001 in ms is taken as seconds.
      return v < 1e12 ? Math.round(v * 1000) : Math.round(v);
    }
    if (typeof v === 'string') {
      const t = Date.parse(v);
      if (Number.isFinite(t)) return t;
    }
    this.#defaulted('timestamp', v);
    return fallback;
  }
}

function readApi(raw: unknown, opts: ValidateOptions): ApiCall | null {
  if (raw === undefined || raw === null) return null;
  if (!isObject(raw)) {
    opts.counter.addDefault('api');
    return null;
  }
  // A call names itself and its category: their absence is a defect whatever the source.
  const r = new FieldReader(raw, { ...opts, absentIsDefault: false }, 'api.');
  return {
    name: r.string('name', 'unknown'),
    category: r.oneOf<ApiCategory>('category', API_CATEGORIES, 'other'),
    // A call without arguments: protobuf leaves the empty list out, so on the wire it is absent.
    args: opts.absentIsDefault && pick(raw, 'args') === undefined ? [] : r.strings('args'),
  };
}

/** Validates an already-parsed object (JSON.parse output, protobuf toObject output). */
export function validateTelemetry(raw: unknown, opts: ValidateOptions): TelemetryEvent {
  if (!isObject(raw)) {
    opts.counter.addRejected('not-an-object');
    throw new InvalidInputError(
      `telemetry event must be an object, got ${raw === null ? 'null' : typeof raw}`,
    );
  }
  try {
    checkShape(raw, opts.limits.maxDepth);
  } catch (error) {
    opts.counter.addRejected('too-deep');
    throw error;
  }
  const r = new FieldReader(raw, opts);
  return {
    type: 'telemetry',
    sandboxId: opts.sandboxId ?? r.string('sandboxId', 'unknown'),
    episodeId: r.string('episodeId', 'unknown'),
    stage: r.stage(),
    seq: r.count('seq'),
    timestamp: r.timestamp(opts.now ?? Date.now()),
    syscallCount: r.count('syscallCount'),
    syscallTypes: r.strings('syscallTypes'),
    fileReadCount: r.count('fileReadCount'),
    fileWriteCount: r.count('fileWriteCount'),
    fileDeleteCount: r.count('fileDeleteCount'),
    filePaths: r.strings('filePaths'),
    networkConnections: r.count('networkConnections'),
    contactedIps: r.strings('contactedIps'),
    bytesSent: r.count('bytesSent'),
    bytesReceived: r.count('bytesReceived'),
    childProcesses: r.count('childProcesses'),
    cpuUsage: r.ranged('cpuUsage', 0, 100, 0),
    memoryUsage: r.count('memoryUsage'),
    registryModification: r.boolean('registryModification'),
    privilegeEscalation: r.boolean('privilegeEscalation'),
    codeInjection: r.boolean('codeInjection'),
    artifactHash: r.string('artifactHash', ''),
    artifactType: r.oneOf<ArtifactType>('artifactType', ARTIFACT_TYPES, 'other'),
    api: readApi(pick(raw, 'api'), opts),
  };
}

/** Parses and validates one JSON telemetry event (a JSONL line, a request body). */
export function parseTelemetryJson(
  text: string | Uint8Array,
  opts: ValidateOptions,
): TelemetryEvent {
  const bytes = typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength;
  if (bytes > opts.limits.maxEventBytes) {
    opts.counter.addRejected('too-large');
    throw new InputTooLargeError(
      `telemetry event is ${bytes} bytes; the limit is ${opts.limits.maxEventBytes} (telemetry.maxEventBytes)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  } catch (error) {
    opts.counter.addRejected('not-json');
    throw new InvalidInputError(`telemetry event is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return validateTelemetry(raw, opts);
}
