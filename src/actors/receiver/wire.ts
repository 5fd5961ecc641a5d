// The Watch stream's EventBatch bytes (untrusted) → what the receiver hands the adapter: validated
// telemetry in columns (messages/packed-telemetry.ts) and the lifecycle events placed among it.
//
// This is the receiver's whole per-event cost, so it reads the protobuf wire format itself instead
// of going through proto-loader (protobufjs decode, toObject, then validateTelemetry over the
// object and the packer over the result): that path built two objects and a list per string field
// for every event and spent 7–12 µs per event on the io thread, most of it on fields no actor
// reads, against 1.6–2.6 µs here (`npm run bench -- receiver`; the primitives:
// sandbox/wire-reader.ts). The result is the same — the same columns, strings, defaults counted per
// field and rejections as validateTelemetry (test/actors/receiver-wire.test.ts compares the two on
// generated batches) — with two differences:
// - a telemetry event larger than telemetry.maxEventBytes is rejected ('too-large'), as in every
//   other telemetry path;
// - a malformed event is rejected on its own ('not-protobuf') and the rest of the batch is kept;
//   before, grpc-js failed the whole message and the stream with it. Only when the batch's own
//   framing is broken is the rest of it lost, counted as one rejection.
// Lifecycle events (a few per episode) are decoded by protobufjs and read as before.
//
// protobuf's rules as protobufjs applies them: the last value of a field wins, repeated fields
// append, a message field given twice is replaced, unknown fields are skipped. Varints up to ten
// bytes; 64-bit integers become numbers (exact up to 2^53) as proto-loader's `longs: Number` does.

import type protobuf from 'protobufjs';
import type { EpisodeLifecycle } from '../../messages/episode.ts';
import {
  COL,
  COLUMNS,
  FLAG_INJECTION,
  FLAG_PRIVILEGE,
  FLAG_REGISTRY,
  type PackedTelemetry,
  type SequencedLifecycle,
  TelemetryPacker,
} from '../../messages/packed-telemetry.ts';
import { API_CATEGORIES, ARTIFACT_TYPES } from '../../messages/telemetry.ts';
import { InputTooLargeError, InvalidInputError } from '../../runtime/errors.ts';
import { BYTES, Cursor, FIXED64, MalformedError, VARINT } from '../../sandbox/wire-reader.ts';
import { MAX_COUNT, MAX_NODES, type ValidateOptions } from '../../validation/telemetry.ts';
import { sandboxProtoRoot } from '../../validation/telemetry-proto.ts';

export interface DecodedBatch {
  readonly telemetry: PackedTelemetry;
  readonly lifecycle: SequencedLifecycle[];
  /** Events left out, each with why (already counted in opts.counter by reason). */
  readonly rejected: readonly Error[];
}

/** Reads a lifecycle message's object (protobufjs toObject) into Warden's event. */
export type LifecycleReader = (
  kind: 'episodeStarted' | 'stageOutcome' | 'stageFailed',
  wire: Record<string, unknown>,
) => EpisodeLifecycle | undefined;

/** UTF-16 length of a UTF-8 string field, without decoding it when it cannot be over `max`. */
function longerThan(c: Cursor, start: number, end: number, max: number): boolean {
  return end - start > max && c.text(start, end).length > max;
}

const ARTIFACT = new Set<string>(ARTIFACT_TYPES);
const CATEGORY = new Map<string, number>(API_CATEGORIES.map((x, i) => [x, i]));
const isArtifactType = (s: string) => ARTIFACT.has(s) || ARTIFACT.has(s.toLowerCase());
const LONGEST_ARTIFACT = Math.max(...ARTIFACT_TYPES.map((x) => x.length));
const LONGEST_CATEGORY = Math.max(...API_CATEGORIES.map((x) => x.length));
/** Count fields by field number → column (all uint64 on the wire). */
const COUNT_COLUMN: (number | undefined)[] = [];
const COUNT_NAME: string[] = [];
for (const [field, column, name] of [
  [4, COL.seq, 'seq'],
  [6, COL.syscallCount, 'syscallCount'],
  [8, COL.fileReadCount, 'fileReadCount'],
  [9, COL.fileWriteCount, 'fileWriteCount'],
  [10, COL.fileDeleteCount, 'fileDeleteCount'],
  [12, COL.networkConnections, 'networkConnections'],
  [14, COL.bytesSent, 'bytesSent'],
  [15, COL.bytesReceived, 'bytesReceived'],
  [16, COL.childProcesses, 'childProcesses'],
  [18, COL.memoryUsage, 'memoryUsage'],
] as const) {
  COUNT_COLUMN[field] = column;
  COUNT_NAME[field] = name;
}
/** The repeated string fields: field number → index into RawEvent.lists, and their names. */
const LIST_INDEX: Record<number, number> = { 7: 0, 11: 1, 13: 2 };
const LIST_NAMES = ['syscallTypes', 'filePaths', 'contactedIps'];

/** A repeated string field as validateTelemetry reads it: items, and the ones it would cut. */
class StringList {
  items = 0;
  /** Strings among the first maxArrayLength longer than maxStringLength. */
  long = 0;

  reset(): void {
    this.items = 0;
    this.long = 0;
  }

  add(c: Cursor, start: number, end: number, opts: ValidateOptions): void {
    if (this.items++ < opts.limits.maxArrayLength) {
      if (longerThan(c, start, end, opts.limits.maxStringLength)) this.long++;
    }
  }

  count(field: string, opts: ValidateOptions): void {
    if (this.items > opts.limits.maxArrayLength) opts.counter.addDefault(`${field}:truncated`);
    for (let i = 0; i < this.long; i++) opts.counter.addDefault(`${field}:truncated`);
  }
}

/** One telemetry event as read off the wire, before validation. */
class RawEvent {
  readonly row = new Float64Array(COLUMNS);
  /** Field numbers seen (bit per field 1–24). */
  present = 0;
  episodeStart = 0;
  episodeEnd = 0;
  stage = 0;
  timestamp = 0;
  artifactHashBytes = 0;
  artifactHashLong = false;
  artifactTypeStart = 0;
  artifactTypeEnd = 0;
  flags = 0;
  readonly lists = [new StringList(), new StringList(), new StringList()];
  // api (field 24), replaced as a whole when it comes again
  nameStart = -1;
  nameEnd = 0;
  categoryStart = -1;
  categoryEnd = 0;
  readonly args = new StringList();

  reset(): void {
    this.row.fill(0);
    this.present = 0;
    this.stage = 0;
    this.flags = 0;
    for (const l of this.lists) l.reset();
    this.resetApi();
  }

  resetApi(): void {
    this.nameStart = -1;
    this.categoryStart = -1;
    this.args.reset();
  }
}

const has = (present: number, field: number) => (present & (1 << field)) !== 0;

function bitCount(v: number): number {
  let n = 0;
  for (let x = v; x !== 0; x &= x - 1) n++;
  return n;
}

function readApi(c: Cursor, e: RawEvent, end: number, opts: ValidateOptions): void {
  const outer = c.end;
  c.end = end;
  e.resetApi();
  while (c.pos < end) {
    const field = c.field();
    const wt = c.wireType;
    if (field <= 3 && wt !== BYTES) throw new MalformedError(`api field ${field}: wire type ${wt}`);
    if (field === 1) {
      e.nameStart = c.delimited();
      e.nameEnd = c.pos;
    } else if (field === 2) {
      e.categoryStart = c.delimited();
      e.categoryEnd = c.pos;
    } else if (field === 3) {
      const s = c.delimited();
      e.args.add(c, s, c.pos, opts);
    } else c.skip(wt);
  }
  c.end = outer;
}

function readTelemetry(c: Cursor, e: RawEvent, end: number, opts: ValidateOptions): void {
  const outer = c.end;
  c.end = end;
  e.reset();
  while (c.pos < end) {
    const field = c.field();
    const wt = c.wireType;
    if (field > 24) {
      c.skip(wt);
      continue;
    }
    const expected =
      field === 17
        ? FIXED64
        : field === 1 || field === 2 || field === 7 || field === 11 || field === 13 || field >= 22
          ? BYTES
          : VARINT;
    if (wt !== expected) throw new MalformedError(`field ${field}: wire type ${wt}`);
    e.present |= 1 << field;
    const column = COUNT_COLUMN[field];
    if (column !== undefined) {
      e.row[column] = c.uint64();
      continue;
    }
    switch (field) {
      case 1:
        c.delimited();
        break;
      case 2:
        e.episodeStart = c.delimited();
        e.episodeEnd = c.pos;
        break;
      case 3:
        e.stage = c.uint32() | 0;
        break;
      case 5:
        e.timestamp = c.int64();
        break;
      case 7:
      case 11:
      case 13: {
        const s = c.delimited();
        e.lists[LIST_INDEX[field]!]!.add(c, s, c.pos, opts);
        break;
      }
      case 17:
        e.row[COL.cpuUsage] = c.double();
        break;
      case 19:
      case 20:
      case 21: {
        const bit = field === 19 ? FLAG_REGISTRY : field === 20 ? FLAG_PRIVILEGE : FLAG_INJECTION;
        if (c.uint32() !== 0) e.flags |= bit;
        else e.flags &= ~bit;
        break;
      }
      case 22: {
        const s = c.delimited();
        e.artifactHashBytes = c.pos - s;
        e.artifactHashLong = longerThan(c, s, c.pos, opts.limits.maxStringLength);
        break;
      }
      case 23:
        e.artifactTypeStart = c.delimited();
        e.artifactTypeEnd = c.pos;
        break;
      case 24: {
        const start = c.delimited();
        const after = c.pos;
        c.pos = start;
        readApi(c, e, after, opts);
        break;
      }
    }
  }
  c.end = outer;
}

/** The values validateTelemetry would keep or count, from a RawEvent; throws when it rejects. */
function validate(
  c: Cursor,
  e: RawEvent,
  opts: ValidateOptions,
): { episodeId: string; apiName: string | null } {
  const { limits, counter } = opts;
  const p = e.present;
  // checkShape: nodes (the object, each field present, each list item) and nesting depth.
  let nodes = 1 + bitCount(p) + e.lists[0]!.items + e.lists[1]!.items + e.lists[2]!.items;
  const api = has(p, 24);
  if (api) nodes += (e.nameStart >= 0 ? 1 : 0) + (e.categoryStart >= 0 ? 1 : 0);
  if (api && e.args.items > 0) {
    nodes += 1 + e.args.items;
    if (limits.maxDepth < 3) {
      counter.addRejected('too-deep');
      throw new InputTooLargeError(`telemetry event nests deeper than ${limits.maxDepth} levels`);
    }
  }
  if (nodes > MAX_NODES) {
    counter.addRejected('too-deep');
    throw new InputTooLargeError(`telemetry event has more than ${MAX_NODES} values`);
  }

  let episodeId = 'unknown';
  if (has(p, 2)) {
    if (e.episodeEnd > e.episodeStart) {
      episodeId = c.text(e.episodeStart, e.episodeEnd);
      if (episodeId.length > limits.maxStringLength) {
        counter.addDefault('episodeId:truncated');
        episodeId = episodeId.slice(0, limits.maxStringLength);
      }
    } else counter.addDefault('episodeId');
  }
  const row = e.row;
  if (e.stage === 1 || e.stage === 2) row[COL.stage] = e.stage;
  else {
    counter.addDefault('stage');
    row[COL.stage] = 1;
  }
  for (let f = 4; f <= 18; f++) {
    const column = COUNT_COLUMN[f];
    if (column === undefined || row[column]! <= MAX_COUNT) continue;
    counter.addDefault(`${COUNT_NAME[f]}:clamped`);
    row[column] = MAX_COUNT;
  }
  if (has(p, 5) && !(e.timestamp > 0)) counter.addDefault('timestamp');
  for (let k = 0; k < 3; k++) e.lists[k]!.count(LIST_NAMES[k]!, opts);
  const cpu = row[COL.cpuUsage]!;
  if (!Number.isFinite(cpu)) {
    counter.addDefault('cpuUsage');
    row[COL.cpuUsage] = 0;
  } else if (cpu < 0 || cpu > 100) {
    counter.addDefault('cpuUsage:clamped');
    row[COL.cpuUsage] = cpu < 0 ? 0 : 100;
  }
  row[COL.flags] = e.flags;
  if (has(p, 22)) {
    if (e.artifactHashBytes === 0) counter.addDefault('artifactHash');
    else if (e.artifactHashLong) counter.addDefault('artifactHash:truncated');
  }
  if (has(p, 23)) {
    const n = e.artifactTypeEnd - e.artifactTypeStart;
    // More than 4 bytes per character of the longest name cannot lower-case to one.
    if (n > 4 * LONGEST_ARTIFACT || !isArtifactType(c.text(e.artifactTypeStart, e.artifactTypeEnd)))
      counter.addDefault('artifactType');
  }
  let apiName: string | null = null;
  row[COL.category] = -1;
  if (api) {
    apiName = 'unknown';
    if (e.nameStart >= 0 && e.nameEnd > e.nameStart) {
      apiName = c.text(e.nameStart, e.nameEnd);
      if (apiName.length > limits.maxStringLength) {
        counter.addDefault('api.name:truncated');
        apiName = apiName.slice(0, limits.maxStringLength);
      }
    } else counter.addDefault('api.name');
    let category = -1;
    if (e.categoryStart >= 0 && e.categoryEnd - e.categoryStart <= 4 * LONGEST_CATEGORY) {
      const text = c.text(e.categoryStart, e.categoryEnd);
      category = CATEGORY.get(text) ?? CATEGORY.get(text.toLowerCase()) ?? -1;
    }
    if (category < 0) {
      counter.addDefault('api.category');
      category = CATEGORY.get('other')!;
    }
    row[COL.category] = category;
    if (e.args.items > 0) e.args.count('api.args', opts);
  }
  return { episodeId, apiName };
}

const LIFECYCLE = { 1: 'episodeStarted', 3: 'stageOutcome', 4: 'stageFailed' } as const;
let lifecycleTypes: Record<number, protobuf.Type> | undefined;
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: false };

const malformed = (opts: ValidateOptions, what: string) => {
  opts.counter.addRejected('not-protobuf');
  return new InvalidInputError(`sandbox event is not valid protobuf: ${what}`);
};

/**
 * Decodes one EventBatch. Never throws for what the bytes hold: a rejected event is counted in
 * opts.counter (by reason) and returned in `rejected`, and the batch goes on without it.
 */
export function decodeEventBatch(
  bytes: Uint8Array,
  opts: ValidateOptions,
  readLifecycle: LifecycleReader,
): DecodedBatch {
  const buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c = new Cursor(buf);
  c.end = buf.length;
  const packer = new TelemetryPacker(Math.max(1, buf.length >> 7));
  const lifecycle: SequencedLifecycle[] = [];
  const rejected: Error[] = [];
  const raw = new RawEvent();
  while (c.pos < buf.length) {
    // EventBatch: field 1 holds each SandboxEvent; anything else is skipped.
    let start: number;
    let end: number;
    try {
      if (c.field() !== 1 || c.wireType !== BYTES) {
        c.skip(c.wireType);
        continue;
      }
      start = c.delimited();
      end = c.pos;
    } catch (error) {
      rejected.push(malformed(opts, `the batch's framing: ${(error as Error).message}`));
      break; // the rest of the batch cannot be told apart
    }
    try {
      readEvent(c, start, end, opts, raw, packer, lifecycle, readLifecycle);
    } catch (error) {
      rejected.push(
        error instanceof MalformedError ? malformed(opts, error.message) : (error as Error),
      );
    }
    c.pos = end;
    c.end = buf.length;
  }
  return { telemetry: packer.finish(), lifecycle, rejected };
}

/** One SandboxEvent (a oneof: the last of its members on the wire is the event). */
function readEvent(
  c: Cursor,
  start: number,
  end: number,
  opts: ValidateOptions,
  raw: RawEvent,
  packer: TelemetryPacker,
  lifecycle: SequencedLifecycle[],
  readLifecycle: LifecycleReader,
): void {
  c.pos = start;
  c.end = end;
  let field = 0;
  let bodyStart = 0;
  let bodyEnd = 0;
  while (c.pos < end) {
    const f = c.field();
    if (f >= 1 && f <= 4) {
      if (c.wireType !== BYTES)
        throw new MalformedError(`event field ${f}: wire type ${c.wireType}`);
      field = f;
      bodyStart = c.delimited();
      bodyEnd = c.pos;
    } else c.skip(c.wireType);
  }
  if (field === 0) return; // no event in it: nothing to take
  if (field === 2) {
    if (bodyEnd - bodyStart > opts.limits.maxEventBytes) {
      opts.counter.addRejected('too-large');
      throw new InputTooLargeError(
        `telemetry event is ${bodyEnd - bodyStart} bytes; the limit is ${opts.limits.maxEventBytes} (telemetry.maxEventBytes)`,
      );
    }
    c.pos = bodyStart;
    readTelemetry(c, raw, bodyEnd, opts);
    const { episodeId, apiName } = validate(c, raw, opts);
    packer.addColumns(raw.row, episodeId, apiName);
    return;
  }
  const kind = LIFECYCLE[field as 1 | 3 | 4];
  if (!lifecycleTypes) {
    const root = sandboxProtoRoot();
    lifecycleTypes = {
      1: root.lookupType('warden.sandbox.v1.EpisodeStarted'),
      3: root.lookupType('warden.sandbox.v1.StageOutcome'),
      4: root.lookupType('warden.sandbox.v1.StageFailed'),
    };
  }
  const type = lifecycleTypes[field]!;
  let message: protobuf.Message;
  try {
    message = type.decode(c.buf.subarray(bodyStart, bodyEnd));
  } catch (error) {
    throw new MalformedError(`${kind}: ${(error as Error).message}`);
  }
  const event = readLifecycle(kind, type.toObject(message, TO_OBJECT));
  if (event) lifecycle.push({ at: packer.count, event });
}
