// ActionBatch bytes for the dispatcher, written straight into one buffer; and read back in place.
//
// Through proto-loader, grpc-js ran protobufjs's `fromObject` + `encode` on every action: 4 µs per
// action with its context (five top features), a quarter of the io thread's time at full speed.
// protobufjs's Writer queues one operation object per field and copies at `finish`; this writes
// each field once, after a first pass that sizes the nested messages. The bytes are the ones
// protobufjs writes (same fields, same order, zero values included); a property test holds the
// two to byte equality. One exception: a lone UTF-16 surrogate in a string becomes U+FFFD, valid
// UTF-8 as protobuf strings must be, where protobufjs writes the invalid bytes. Values no sandbox
// should get (negative or fractional numbers where the contract has unsigned integers or enums) go
// through protobufjs unchanged.
//
// The other end, for the reference sandbox: decodeActionBatch reads those bytes in place, only what
// the sandbox uses of each action (2.3 → 0.65 µs per action against proto-loader's deserializer).

import type protobuf from 'protobufjs';
import { sandboxProtoRoot } from '../validation/telemetry-proto.ts';
import { BYTES, Cursor, FIXED32, MalformedError, VARINT } from './wire-reader.ts';
import { lengthDelimited, utf8Length, varintSize, WireWriter } from './wire-writer.ts';

/** What an ActionRequest is made from: the dispatcher's decisions have this shape. */
export interface ActionRequestLike {
  readonly actionId: string;
  readonly episodeId: string;
  readonly stage: number;
  readonly seq: number;
  readonly action: number;
  readonly context: {
    readonly modelVersion: string;
    readonly qValues: readonly number[];
    readonly confidence: number;
    readonly source: string;
    readonly topFeatures: readonly {
      readonly index: number;
      readonly name: string;
      readonly value: number;
      readonly weight: number;
    }[];
  };
}

const uint = (n: number, max: number): boolean => Number.isInteger(n) && n >= 0 && n <= max;

function encodable(a: ActionRequestLike): boolean {
  if (!uint(a.stage, 0x7fffffff) || !uint(a.action, 0x7fffffff)) return false;
  if (!uint(a.seq, Number.MAX_SAFE_INTEGER)) return false;
  for (const f of a.context.topFeatures) if (!uint(f.index, 0xffffffff)) return false;
  return true;
}

let batchType: protobuf.Type | undefined;
function slowPath(actions: readonly ActionRequestLike[]): Buffer {
  batchType ??= sandboxProtoRoot().lookupType('warden.sandbox.v1.ActionBatch');
  const bytes = batchType.encode(batchType.fromObject({ actions })).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** The ActionBatch message for these actions (field by field what protobufjs writes). */
export function encodeActionBatch(actions: readonly ActionRequestLike[]): Buffer {
  // First pass: the size of every nested message (requests, contexts, features) and string.
  const sizes: number[] = [];
  let total = 0;
  for (const a of actions) {
    if (!encodable(a)) return slowPath(actions);
    const c = a.context;
    const start = sizes.length;
    sizes.push(
      0,
      0,
      utf8Length(a.actionId),
      utf8Length(a.episodeId),
      utf8Length(c.modelVersion),
      utf8Length(c.source),
    );
    let context = lengthDelimited(sizes[start + 4]!) + 5 + lengthDelimited(sizes[start + 5]!);
    if (c.qValues.length > 0) context += lengthDelimited(4 * c.qValues.length);
    for (const f of c.topFeatures) {
      const name = utf8Length(f.name);
      const feature = 1 + varintSize(f.index) + lengthDelimited(name) + 5 + 5;
      sizes.push(name, feature);
      context += lengthDelimited(feature);
    }
    const request =
      lengthDelimited(sizes[start + 2]!) +
      lengthDelimited(sizes[start + 3]!) +
      1 +
      varintSize(a.stage) +
      1 +
      varintSize(a.seq) +
      1 +
      varintSize(a.action) +
      lengthDelimited(context);
    sizes[start] = request;
    sizes[start + 1] = context;
    total += lengthDelimited(request);
  }
  // Second pass: the bytes. Per action, sizes holds: request, context, actionId, episodeId,
  // modelVersion, source, then name and message size of each top feature.
  const out = new WireWriter(total);
  let k = 0;
  for (const a of actions) {
    const c = a.context;
    out.tag(1, 2); // ActionBatch.actions
    out.varint(sizes[k]!);
    out.string(1, a.actionId, sizes[k + 2]!);
    out.string(2, a.episodeId, sizes[k + 3]!);
    out.tag(3, 0);
    out.varint(a.stage);
    out.tag(4, 0);
    out.varint(a.seq);
    out.tag(5, 0);
    out.varint(a.action);
    out.tag(6, 2); // ActionRequest.context
    out.varint(sizes[k + 1]!);
    out.string(1, c.modelVersion, sizes[k + 4]!);
    if (c.qValues.length > 0) {
      out.tag(2, 2); // packed
      out.varint(4 * c.qValues.length);
      for (const q of c.qValues) out.pos = out.buf.writeFloatLE(q, out.pos);
    }
    out.float(3, c.confidence);
    out.string(4, c.source, sizes[k + 5]!);
    k += 6;
    for (const f of c.topFeatures) {
      const name = sizes[k++]!;
      const feature = sizes[k++]!;
      out.tag(5, 2); // ActionContext.top_features
      out.varint(feature);
      out.tag(1, 0);
      out.varint(f.index);
      out.string(2, f.name, name);
      out.float(3, f.value);
      out.float(4, f.weight);
    }
  }
  return out.buf;
}

/**
 * What the reference sandbox reads of an ActionRequest. Fields absent on the wire are undefined,
 * as proto-loader (`defaults: false`) left them; the top features are skipped, unread.
 */
export interface ActionRequestRead {
  actionId?: string;
  episodeId?: string;
  stage?: number;
  seq?: number;
  action?: number;
  context?: {
    modelVersion?: string;
    /** How many Q-values came (packed or not). */
    qValueCount: number;
    confidence?: number;
    source?: string;
  };
}

function readContext(c: Cursor, end: number): NonNullable<ActionRequestRead['context']> {
  const outer = c.end;
  c.end = end;
  const context: NonNullable<ActionRequestRead['context']> = { qValueCount: 0 };
  while (c.pos < end) {
    const field = c.field();
    const wt = c.wireType;
    if (field === 1 && wt === BYTES) {
      const s = c.delimited();
      context.modelVersion = c.text(s, c.pos);
    } else if (field === 2 && wt === BYTES) {
      const s = c.delimited();
      if ((c.pos - s) % 4 !== 0) throw new MalformedError('packed floats of a length not /4');
      context.qValueCount += (c.pos - s) / 4;
    } else if (field === 2 && wt === FIXED32) {
      c.float();
      context.qValueCount++;
    } else if (field === 3 && wt === FIXED32) context.confidence = c.float();
    else if (field === 4 && wt === BYTES) {
      const s = c.delimited();
      context.source = c.text(s, c.pos);
    } else if (field <= 4) throw new MalformedError(`context field ${field}: wire type ${wt}`);
    else c.skip(wt); // top features (5) and unknown fields
  }
  c.end = outer;
  return context;
}

function readRequest(c: Cursor, end: number): ActionRequestRead {
  const outer = c.end;
  c.end = end;
  const a: ActionRequestRead = {};
  while (c.pos < end) {
    const field = c.field();
    const wt = c.wireType;
    if (field > 6) {
      c.skip(wt);
      continue;
    }
    const delimited = field === 1 || field === 2 || field === 6;
    if (wt !== (delimited ? BYTES : VARINT))
      throw new MalformedError(`action field ${field}: wire type ${wt}`);
    if (field === 1) {
      const s = c.delimited();
      a.actionId = c.buf.toString('utf8', s, c.pos); // unique per action: not worth caching
    } else if (field === 2) {
      const s = c.delimited();
      a.episodeId = c.text(s, c.pos);
    } else if (field === 3) a.stage = c.uint32() | 0;
    else if (field === 4) a.seq = c.uint64();
    else if (field === 5) a.action = c.uint32() | 0;
    else {
      const s = c.delimited();
      const after = c.pos;
      c.pos = s;
      a.context = readContext(c, after); // a context given twice is replaced, as protobufjs does
    }
  }
  c.end = outer;
  return a;
}

/** ActionBatch bytes (from a client: untrusted) → its actions; throws MalformedError. */
export function decodeActionBatch(bytes: Buffer): ActionRequestRead[] {
  const c = new Cursor(bytes);
  c.end = bytes.length;
  const actions: ActionRequestRead[] = [];
  while (c.pos < bytes.length) {
    if (c.field() !== 1 || c.wireType !== BYTES) {
      c.skip(c.wireType);
      continue;
    }
    const s = c.delimited();
    const after = c.pos;
    c.pos = s;
    actions.push(readRequest(c, after));
    c.pos = after;
    c.end = bytes.length;
  }
  return actions;
}
