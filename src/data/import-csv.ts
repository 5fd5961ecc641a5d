// `warden import csv`: labelled API-call sequence CSVs → recorded telemetry, one episode per row
// and one event per call. Two layouts:
//   ids    columns t_0…t_N hold API ids, translated by an id → name table (Oliveira 2019)
//   names  every column but the label holds an API name, in call order
// Label values: 1/0, malware/goodware, malicious/benign (case-insensitive).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { Label } from '../messages/episode.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import { InvalidInputError } from '../runtime/errors.ts';
import { callEvent } from '../telemetry/call-event.ts';

export interface CsvImportOptions {
  /** Column holding the label (default: `malware`, else `label`, else the last column). */
  readonly labelColumn?: string;
  /** id → API name table (JSON object); turns on the ids layout. */
  readonly names?: Readonly<Record<string, string>>;
  /** Milliseconds between synthetic call timestamps. */
  readonly stepMs?: number;
  readonly startTime?: number;
}

export interface CsvImportResult {
  readonly traces: RecordedTrace[];
  readonly skippedRows: readonly { row: number; reason: string }[];
  readonly unknownIds: number;
}

function parseLabel(value: string | undefined): Label | undefined {
  const v = (value ?? '').trim().toLowerCase();
  if (['1', 'malware', 'malicious', 'true', 'yes'].includes(v)) return 'malicious';
  if (['0', 'goodware', 'benign', 'false', 'no', 'clean'].includes(v)) return 'benign';
  return undefined;
}

export function sequenceHash(calls: readonly string[]): string {
  return createHash('sha256').update(calls.join('\n')).digest('hex');
}

/** An id → API name table file (`--names`, api_names.json): a JSON object of strings, or a
 * clear error naming the file. */
export function readNamesTable(path: string): Record<string, string> {
  let table: unknown;
  try {
    table = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InvalidInputError(`${path}: ${(error as Error).message}`);
  }
  if (
    typeof table !== 'object' ||
    table === null ||
    Array.isArray(table) ||
    !Object.values(table).every((v) => typeof v === 'string')
  )
    throw new InvalidInputError(
      `${path}: expected a JSON object from call id to API name, e.g. {"0": "NtClose"}`,
    );
  return table as Record<string, string>;
}

export function importCsv(path: string, options: CsvImportOptions = {}): CsvImportResult {
  return parseCsv(readFileSync(path), path, options);
}

/** CSV bytes (untrusted) → traces; text that is not CSV is an InvalidInputError naming the file. */
export function parseCsv(
  bytes: Uint8Array | string,
  path: string,
  options: CsvImportOptions = {},
): CsvImportResult {
  let rows: string[][];
  try {
    rows = parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes), {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }) as string[][];
  } catch (error) {
    throw new InvalidInputError(`${path}: not a CSV file: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const header = rows[0];
  if (!header || header.length < 2)
    throw new InvalidInputError(`${path}: expected a header row and at least two columns`);
  const labelColumn =
    options.labelColumn ??
    (header.includes('malware') ? 'malware' : header.includes('label') ? 'label' : header.at(-1)!);
  const labelIndex = header.indexOf(labelColumn);
  if (labelIndex < 0)
    throw new InvalidInputError(
      `${path}: no label column "${labelColumn}" (columns: ${header.slice(0, 5).join(', ')}, …)`,
    );
  const callColumns = header.map((_, i) => i).filter((i) => i !== labelIndex);
  const names = options.names;
  const stepMs = options.stepMs ?? 10;
  const start = options.startTime ?? Date.UTC(2019, 0, 1);
  const source = basename(path);
  const traces: RecordedTrace[] = [];
  const skippedRows: { row: number; reason: string }[] = [];
  let unknownIds = 0;

  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    const label = parseLabel(row[labelIndex]);
    if (!label) {
      skippedRows.push({
        row: r + 1,
        reason: `label "${row[labelIndex] ?? ''}" is not 0/1, malware/goodware or malicious/benign`,
      });
      continue;
    }
    const calls: string[] = [];
    for (const i of callColumns) {
      const cell = (row[i] ?? '').trim();
      if (cell === '') continue;
      if (names) {
        // Own string entries only: a cell such as "__proto__" is an unknown id, not a lookup.
        const name = Object.hasOwn(names, cell) ? names[cell] : undefined;
        if (typeof name !== 'string') unknownIds++;
        calls.push(typeof name === 'string' ? name : `api_${cell}`);
      } else calls.push(cell);
    }
    const hash = sequenceHash(calls);
    const episodeId = `${source.replace(/\.[^.]+$/, '')}-${r}`;
    const ctx = {
      sandboxId: 'recorded',
      episodeId,
      stage: 1 as const,
      artifactHash: hash,
      artifactType: 'exe' as const,
    };
    traces.push({
      episode: {
        type: 'episode',
        episodeId,
        label,
        family: null,
        artifactHash: hash,
        artifactType: 'exe',
        source: `${source}#${r + 1}`,
        sequenceHash: hash,
        events: calls.length,
      },
      events: calls.map((name, seq) => callEvent(ctx, seq, start + r * 1000 + seq * stepMs, name)),
    });
  }
  return { traces, skippedRows, unknownIds };
}
