// Reads and writes recorded telemetry (JSON Lines, see docs/telemetry-format.md). Reading is
// line by line: a bad line is counted and reported with its number, never fatal, and events are
// validated like live telemetry (defaults counted per field).

import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Label } from '../messages/episode.ts';
import type { RecordedEpisode, RecordedLine, RecordedTrace } from '../messages/recorded.ts';
import { ARTIFACT_TYPES, type ArtifactType, type TelemetryEvent } from '../messages/telemetry.ts';
import { InvalidInputError } from '../runtime/errors.ts';
import { DefaultsCounter } from '../validation/defaults-counter.ts';
import { parseTelemetryJson, type TelemetryLimits } from '../validation/telemetry.ts';

export const RECORDED_LIMITS: TelemetryLimits = {
  maxEventBytes: 1 << 20,
  maxStringLength: 4096,
  maxArrayLength: 1024,
  maxDepth: 8,
};

export interface ReadReport {
  readonly lines: number;
  readonly badLines: readonly { line: number; error: string }[];
  readonly orphanEvents: number;
  readonly counter: DefaultsCounter;
}

const LABELS: readonly Label[] = ['malicious', 'benign', 'unknown'];

function episodeHeader(raw: Record<string, unknown>): RecordedEpisode {
  const str = (k: string, d: string) =>
    typeof raw[k] === 'string' && raw[k] !== '' ? (raw[k] as string) : d;
  const label = LABELS.includes(raw.label as Label) ? (raw.label as Label) : 'unknown';
  const artifactType = ARTIFACT_TYPES.includes(raw.artifactType as ArtifactType)
    ? (raw.artifactType as ArtifactType)
    : 'other';
  const events =
    typeof raw.events === 'number' && Number.isInteger(raw.events) && raw.events >= 0
      ? raw.events
      : 0;
  return {
    type: 'episode',
    episodeId: str('episodeId', 'unknown'),
    label,
    family: typeof raw.family === 'string' && raw.family !== '' ? raw.family : null,
    artifactHash: str('artifactHash', ''),
    artifactType,
    source: str('source', ''),
    sequenceHash: str('sequenceHash', ''),
    events,
  };
}

/** Reads a whole recorded file (optionally .gz) into traces, in file order. */
export async function readRecorded(
  path: string,
  limits: TelemetryLimits = RECORDED_LIMITS,
): Promise<{ traces: RecordedTrace[]; report: ReadReport }> {
  const input = createReadStream(path);
  const lines = createInterface({
    input: path.endsWith('.gz') ? input.pipe(createGunzip()) : input,
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const counter = new DefaultsCounter();
  const badLines: { line: number; error: string }[] = [];
  const order: string[] = [];
  const byId = new Map<string, { episode: RecordedEpisode; events: TelemetryEvent[] }>();
  let n = 0;
  let orphanEvents = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      let first: unknown;
      try {
        // Headers are recognised before the telemetry validator sees the line.
        first =
          line.includes('"type":"episode"') || line.includes('"type": "episode"')
            ? JSON.parse(line)
            : undefined;
      } catch (error) {
        badLines.push({ line: n, error: (error as Error).message });
        continue;
      }
      if (first && typeof first === 'object' && (first as { type?: unknown }).type === 'episode') {
        const episode = episodeHeader(first as Record<string, unknown>);
        if (!byId.has(episode.episodeId)) order.push(episode.episodeId);
        byId.set(episode.episodeId, { episode, events: byId.get(episode.episodeId)?.events ?? [] });
        continue;
      }
      try {
        const event = parseTelemetryJson(line, { limits, counter, now: 0 });
        let entry = byId.get(event.episodeId);
        if (!entry) {
          orphanEvents++;
          entry = {
            episode: episodeHeader({ episodeId: event.episodeId, source: path }),
            events: [],
          };
          byId.set(event.episodeId, entry);
          order.push(event.episodeId);
        }
        entry.events.push(event);
      } catch (error) {
        badLines.push({ line: n, error: (error as Error).message });
      }
    }
  } catch (error) {
    // The file itself, not a line of it: missing, unreadable, or a gzip stream cut short.
    const e = error as NodeJS.ErrnoException;
    const what = e.code?.startsWith('Z_') ? 'broken gzip' : 'cannot read it';
    throw new InvalidInputError(`${path}: ${what}${n > 0 ? ` after line ${n}` : ''}: ${e.message}`);
  }
  const traces = order.map((id) => {
    const { episode, events } = byId.get(id)!;
    events.sort((a, b) => a.stage - b.stage || a.seq - b.seq);
    return { episode, events };
  });
  return { traces, report: { lines: n, badLines, orphanEvents, counter } };
}

/** Writes traces as JSON Lines: each episode's header, then its events. */
export async function writeRecorded(
  path: string,
  traces: Iterable<RecordedTrace>,
): Promise<number> {
  const out = createWriteStream(path);
  let lines = 0;
  const write = async (record: RecordedLine) => {
    if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
    lines++;
  };
  for (const trace of traces) {
    await write(trace.episode);
    for (const e of trace.events) await write(e);
  }
  out.end();
  await once(out, 'finish');
  return lines;
}
