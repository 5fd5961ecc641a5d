// `warden import cape`: a CAPEv2 / Cuckoo report.json (optionally gzipped) → recorded telemetry:
// one episode, the calls of every process merged in timestamp order, categories from the report.
// Reports without behaviour (CAPE writes some) give an episode with no events, said in `notes`.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Label } from '../messages/episode.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import type { ApiCategory, ArtifactType } from '../messages/telemetry.ts';
import { InputTooLargeError, InvalidInputError } from '../runtime/errors.ts';
import { apiCategory, CAPE_CATEGORY } from '../telemetry/api-catalog.ts';
import { type CallArgument, callEvent } from '../telemetry/call-event.ts';
import { sequenceHash } from './import-csv.ts';

export interface CapeImportResult {
  readonly trace: RecordedTrace;
  readonly processes: number;
  readonly notes: readonly string[];
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';

/** "2021-03-23 11:38:41,328" (CAPE/Cuckoo, UTC) → epoch ms; NaN when unreadable. */
export function capeTimestamp(value: unknown): number {
  if (typeof value === 'number') return value < 1e12 ? value * 1000 : value;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[,.](\d{1,6}))?/.exec(
    str(value),
  );
  if (!m) return Number.NaN;
  const ms = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms);
}

export function artifactTypeOf(description: string): ArtifactType {
  const d = description.toLowerCase();
  if (d.includes('dll')) return 'dll';
  if (d.includes('executable')) return 'exe';
  if (/(zip|rar|7-zip|gzip|archive|cab)/.test(d)) return 'archive';
  if (/(pdf|word|excel|office|rich text|document)/.test(d)) return 'document';
  if (/(script|text|html|javascript|powershell|batch)/.test(d)) return 'script';
  return 'other';
}

function familyOf(report: Json): string | null {
  const d = report.detections;
  if (typeof d === 'string' && d) return d;
  for (const item of arr(d)) {
    const f = str(obj(item).family);
    if (f) return f;
  }
  const tag = str(report.malfamily_tag) || str(report.malfamily);
  return tag || null;
}

/** Largest report accepted, after decompression (the bundled ones are 1–60 MB). */
export const MAX_REPORT_BYTES = 512 * 1024 * 1024;

/** `label`: what the report is known to be (the bundled reports are all of malware runs). */
export function importCape(path: string, label: Label = 'malicious'): CapeImportResult {
  return parseCapeReport(readFileSync(path), path, label);
}

/**
 * A report's bytes (JSON, or gzip of it) → one episode. The bytes are untrusted: a broken gzip,
 * text that is not JSON, or more than `maxBytes` once decompressed (a gzip bomb) is a clear
 * InvalidInputError / InputTooLargeError; any JSON at all gives an episode (missing parts empty).
 */
export function parseCapeReport(
  bytes: Uint8Array,
  path: string,
  label: Label = 'malicious',
  maxBytes = MAX_REPORT_BYTES,
): CapeImportResult {
  let raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (raw.byteLength > maxBytes)
    throw new InputTooLargeError(`${path}: report larger than ${maxBytes} bytes`);
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw, { maxOutputLength: maxBytes });
    } catch (error) {
      const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw tooLarge
        ? new InputTooLargeError(
            `${path}: report larger than ${maxBytes} bytes once decompressed`,
            {
              cause: error,
            },
          )
        : new InvalidInputError(`${path}: broken gzip: ${(error as Error).message}`, {
            cause: error,
          });
    }
  }
  let report: Json;
  try {
    report = obj(JSON.parse(raw.toString('utf8')));
  } catch (error) {
    throw new InvalidInputError(`${path}: not a JSON report: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const notes: string[] = [];
  const file = obj(obj(report.target).file);
  const artifactHash = str(file.sha256) || str(file.md5) || basename(path);
  const artifactType = artifactTypeOf(str(file.type));
  const processes = arr(obj(report.behavior).processes);

  interface Call {
    t: number;
    order: number;
    name: string;
    category: ApiCategory;
    args: CallArgument[];
  }
  const calls: Call[] = [];
  let order = 0;
  let badTimes = 0;
  let noCalls = 0;
  let unnamed = 0;
  for (const p of processes) {
    const listed = obj(p).calls;
    if (listed !== undefined && !Array.isArray(listed)) noCalls++;
    for (const c of arr(listed)) {
      const call = obj(c);
      const name = str(call.api);
      if (!name) {
        unnamed++;
        continue;
      }
      let t = capeTimestamp(call.timestamp);
      if (!Number.isFinite(t)) {
        badTimes++;
        t = calls.at(-1)?.t ?? 0;
      }
      const reported = str(call.category).toLowerCase();
      const category = CAPE_CATEGORY[reported] ?? apiCategory(name);
      const args = arr(call.arguments).map((a) => ({
        name: str(obj(a).name),
        value: str(obj(a).value),
      }));
      calls.push({ t, order: order++, name, category, args });
    }
  }
  if (processes.length === 0) notes.push('report has no behavior.processes: episode has no events');
  if (noCalls > 0) notes.push(`${noCalls} processes had a calls field that is not a list: skipped`);
  if (unnamed > 0) notes.push(`${unnamed} calls had no API name: skipped`);
  if (badTimes > 0)
    notes.push(`${badTimes} calls had no readable timestamp and kept their report order`);
  // Stable merge of all processes by time; ties keep report order.
  calls.sort((a, b) => a.t - b.t || a.order - b.order);

  const episodeId = `cape-${artifactHash.slice(0, 16)}`;
  const ctx = { sandboxId: 'recorded', episodeId, stage: 1 as const, artifactHash, artifactType };
  const events = calls.map((c, seq) => callEvent(ctx, seq, c.t, c.name, c.args, c.category));
  const family = familyOf(report);
  return {
    trace: {
      episode: {
        type: 'episode',
        episodeId,
        label,
        family,
        artifactHash,
        artifactType,
        source: basename(path),
        sequenceHash: sequenceHash(calls.map((c) => c.name)),
        events: events.length,
      },
      events,
    },
    processes: processes.length,
    notes,
  };
}
