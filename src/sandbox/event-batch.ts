// EventBatch bytes for the reference sandbox's Watch stream, built from pre-encoded parts.
//
// A replayed telemetry event differs between replays only in five fields (sandbox, episode, stage,
// seq, timestamp). Its other fields are encoded once per recorded event and cached; protobuf lets
// a message's fields come in any order, so the event on the wire is the five fields followed by
// the cached bytes. Through proto-loader, grpc-js ran `fromObject` + `encode` over every field of
// every event, the largest cost of the sandbox on the bench (the sandboxes share its two cores with
// Warden). Lifecycle messages (few) are still encoded whole by protobufjs; the five fields and the
// two length-delimited wrappers (EventBatch.events, SandboxEvent.telemetry) are written here,
// straight into the batch's one buffer (a Writer, a few Buffers and a concat per event before).

import type * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import type { TelemetryEvent } from '../messages/telemetry.ts';
import { sandboxProtoRoot } from '../validation/telemetry-proto.ts';
import { lengthDelimited, utf8Length, varintSize, WireWriter } from './wire-writer.ts';

/** A telemetry event of one replay: the recorded event and the five fields of this replay. */
export interface TelemetryItem {
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: number;
  readonly seq: number;
  readonly timestampMs: number;
  readonly event: TelemetryEvent;
  /** The event's shared fields already encoded (encodedEvents), saving a lookup per event. */
  readonly encoded?: Uint8Array;
}

/** One SandboxEvent of a batch: telemetry to encode from its cached part, or a lifecycle message. */
export type BatchItem =
  | { readonly telemetry: TelemetryItem }
  | {
      readonly telemetry?: undefined;
      readonly episodeStarted?: object;
      readonly stageOutcome?: object;
      readonly stageFailed?: object;
    };

let types: { telemetry: protobuf.Type; sandboxEvent: protobuf.Type } | undefined;
const typesOf = () => {
  const root = sandboxProtoRoot();
  types ??= {
    telemetry: root.lookupType('warden.sandbox.v1.TelemetryEvent'),
    sandboxEvent: root.lookupType('warden.sandbox.v1.SandboxEvent'),
  };
  return types;
};

const staticParts = new WeakMap<TelemetryEvent, Uint8Array>();

/** The fields of a recorded event that every replay shares, encoded once. */
function staticPart(e: TelemetryEvent): Uint8Array {
  let bytes = staticParts.get(e);
  if (!bytes) {
    const t = typesOf().telemetry;
    const {
      sandboxId: _s,
      episodeId: _e,
      stage: _st,
      seq: _q,
      timestampMs: _t,
      timestamp: _ts,
      type: _ty,
      ...rest
    } = e as TelemetryEvent & Record<string, unknown>;
    bytes = t.encode(t.fromObject(rest)).finish();
    staticParts.set(e, bytes);
  }
  return bytes;
}

/**
 * Encodes the shared part of every recorded event up front (the reference sandbox does at start):
 * a first replay then costs what every later one does, instead of 3.5 µs more per event on the
 * cores it shares with Warden.
 */
export function prepareRecorded(events: readonly TelemetryEvent[]): void {
  encodedEvents(events);
}

const encodedTraces = new WeakMap<readonly TelemetryEvent[], readonly Uint8Array[]>();

/**
 * The shared part of each of a trace's events, in order, encoded once: a sandbox replaying the
 * trace passes `encoded: parts[i]` with event i (one lookup per stage instead of one per event,
 * each a cache miss in a table of every recorded event).
 */
export function encodedEvents(events: readonly TelemetryEvent[]): readonly Uint8Array[] {
  let parts = encodedTraces.get(events);
  if (!parts) {
    parts = events.map(staticPart);
    encodedTraces.set(events, parts);
  }
  return parts;
}

/** A telemetry event's varying fields as protobufjs writes them (every field, zeros too). */
const fieldsSize = (t: TelemetryItem, sandbox: number, episode: number): number =>
  5 + // five one-byte tags
  varintSize(sandbox) +
  sandbox +
  varintSize(episode) +
  episode +
  varintSize(t.stage) +
  varintSize(t.seq) +
  varintSize(t.timestampMs);

/**
 * The EventBatch message (field by field identical to encoding the objects with protobufjs), in
 * one buffer: a first pass sizes every event, the second writes it. Replay fields must be
 * non-negative integers (stage, seq, timestamp), as the reference sandbox's are.
 */
export function encodeEventBatch(items: readonly BatchItem[]): Buffer {
  const n = items.length;
  // Per item: its SandboxEvent's size, its TelemetryEvent's, and its two strings' byte lengths.
  const sizes = new Float64Array(4 * n);
  // Per item: its recorded event's encoded fields, or a lifecycle event's whole message.
  const parts: Uint8Array[] = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const item = items[i]!;
    let size: number;
    if (item.telemetry) {
      const t = item.telemetry;
      const sandbox = utf8Length(t.sandboxId);
      const episode = utf8Length(t.episodeId);
      const body = t.encoded ?? staticPart(t.event);
      parts[i] = body;
      const inner = fieldsSize(t, sandbox, episode) + body.length;
      size = lengthDelimited(inner); // SandboxEvent.telemetry
      sizes[4 * i + 1] = inner;
      sizes[4 * i + 2] = sandbox;
      sizes[4 * i + 3] = episode;
    } else {
      const type = typesOf().sandboxEvent;
      const bytes = type.encode(type.fromObject(item)).finish();
      parts[i] = bytes;
      sizes[4 * i + 1] = -1;
      size = bytes.length;
    }
    sizes[4 * i] = size;
    total += lengthDelimited(size);
  }
  const out = new WireWriter(total);
  for (let i = 0; i < n; i++) {
    out.tag(1, 2); // EventBatch.events
    out.varint(sizes[4 * i]!);
    if (sizes[4 * i + 1] === -1) {
      out.raw(parts[i]!); // a lifecycle event, encoded whole
      continue;
    }
    const t = items[i]!.telemetry!;
    out.tag(2, 2); // SandboxEvent.telemetry
    out.varint(sizes[4 * i + 1]!);
    out.string(1, t.sandboxId, sizes[4 * i + 2]!);
    out.string(2, t.episodeId, sizes[4 * i + 3]!);
    out.tag(3, 0);
    out.varint(t.stage);
    out.tag(4, 0);
    out.varint(t.seq);
    out.tag(5, 0);
    out.varint(t.timestampMs);
    out.raw(parts[i]!); // the recorded event's other fields
  }
  return out.buf;
}

/**
 * The contract's service definition for a sandbox server, except that Watch also writes already
 * encoded EventBatch bytes as they are (what encodeEventBatch returns; objects still go through
 * proto-loader), and Act and ActStream hand the handler each ActionBatch as its bytes
 * (action-batch.ts decodeActionBatch reads them).
 */
export function withEncodedBatches(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const watch = service.Watch!;
  const serialize = watch.responseSerialize;
  const bytes = (value: Buffer) => value;
  return {
    ...service,
    Watch: {
      ...watch,
      responseSerialize: (value: unknown) =>
        Buffer.isBuffer(value) ? value : serialize(value as never),
    },
    Act: { ...service.Act!, requestDeserialize: bytes },
    ActStream: { ...service.ActStream!, requestDeserialize: bytes },
  };
}
