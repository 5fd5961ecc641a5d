// EventBatch bytes for the reference sandbox's Watch stream, built from pre-encoded parts.
//
// A replayed telemetry event differs between replays only in five fields (sandbox, episode, stage,
// seq, timestamp). Its other fields are encoded once per recorded event and cached; protobuf lets
// a message's fields come in any order, so the event on the wire is the five fields followed by
// the cached bytes. Through proto-loader, grpc-js ran `fromObject` + `encode` over every field of
// every event, the largest cost of the sandbox on the bench (the sandboxes share its two cores with
// Warden). Lifecycle messages (few) are still encoded whole. protobufjs writes every value; only
// the two length-delimited wrappers (EventBatch.events, SandboxEvent.telemetry) are framed here.

import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { TelemetryEvent } from '../messages/telemetry.ts';
import { sandboxProtoRoot } from '../validation/telemetry-proto.ts';

/** A telemetry event of one replay: the recorded event and the five fields of this replay. */
export interface TelemetryItem {
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: number;
  readonly seq: number;
  readonly timestampMs: number;
  readonly event: TelemetryEvent;
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

const EVENTS_FIELD = (1 << 3) | 2; // EventBatch.events
const TELEMETRY_FIELD = (2 << 3) | 2; // SandboxEvent.telemetry

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
  for (const e of events) staticPart(e);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** The EventBatch message (field by field identical to encoding the objects with protobufjs). */
export function encodeEventBatch(items: readonly BatchItem[]): Buffer {
  const parts: Uint8Array[] = [];
  const w = protobuf.Writer.create();
  for (const item of items) {
    let event: Uint8Array;
    if (item.telemetry) {
      const t = item.telemetry;
      const fields = w
        .reset()
        .uint32(10)
        .string(t.sandboxId)
        .uint32(18)
        .string(t.episodeId)
        .uint32(24)
        .int32(t.stage)
        .uint32(32)
        .uint64(t.seq)
        .uint32(40)
        .int64(t.timestampMs)
        .finish();
      const body = staticPart(t.event);
      const length = fields.length + body.length;
      event = Buffer.concat([Buffer.of(TELEMETRY_FIELD), varint(length), fields, body]);
    } else {
      const type = typesOf().sandboxEvent;
      event = type.encode(type.fromObject(item)).finish();
    }
    parts.push(Buffer.of(EVENTS_FIELD), varint(event.length), event);
  }
  return Buffer.concat(parts);
}

/**
 * The contract's service definition, except that Watch also writes already encoded EventBatch
 * bytes as they are (what encodeEventBatch returns); objects still go through proto-loader.
 */
export function withEncodedWatch(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const watch = service.Watch!;
  const serialize = watch.responseSerialize;
  return {
    ...service,
    Watch: {
      ...watch,
      responseSerialize: (value: unknown) =>
        Buffer.isBuffer(value) ? value : serialize(value as never),
    },
  };
}
