// Recorded traces from a file: a labelled CSV (with api_names.json beside it, or a names table)
// or telemetry JSON Lines. Rows or lines that cannot be read are counted, with the first reason;
// a file with no episode at all is an InvalidInputError, not an empty data set that trains or
// evaluates on nothing.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RecordedTrace } from '../messages/recorded.ts';
import { InvalidInputError } from '../runtime/errors.ts';
import { importCsv, readNamesTable } from './import-csv.ts';
import { readRecorded } from './jsonl.ts';

export interface LoadedTraces {
  readonly traces: RecordedTrace[];
  /** CSV rows or JSONL lines left out, and why the first of them was. */
  readonly skipped: number;
  readonly firstProblem?: string;
}

export async function readTraceFile(path: string, namesPath?: string): Promise<LoadedTraces> {
  let loaded: LoadedTraces;
  if (path.endsWith('.csv')) {
    const guess = join(dirname(path), 'api_names.json');
    const names = namesPath ?? (existsSync(guess) ? guess : undefined);
    const csv = importCsv(path, names ? { names: readNamesTable(names) } : {});
    const first = csv.skippedRows[0];
    loaded = {
      traces: csv.traces,
      skipped: csv.skippedRows.length,
      ...(first ? { firstProblem: `row ${first.row}: ${first.reason}` } : {}),
    };
  } else {
    const { traces, report } = await readRecorded(path);
    const first = report.badLines[0];
    loaded = {
      traces,
      skipped: report.badLines.length,
      ...(first ? { firstProblem: `line ${first.line}: ${first.error}` } : {}),
    };
  }
  if (loaded.traces.length === 0)
    throw new InvalidInputError(
      `${path}: no episodes${loaded.firstProblem ? ` (${loaded.skipped} unreadable, first at ${loaded.firstProblem})` : ''}`,
    );
  return loaded;
}

/** The traces of a file (what readTraceFile finds, without the count of what it left out). */
export async function loadTraces(path: string, namesPath?: string): Promise<RecordedTrace[]> {
  return (await readTraceFile(path, namesPath)).traces;
}

export interface LabelCounts {
  readonly malicious: number;
  readonly benign: number;
  readonly unknown: number;
}

/** How many episodes carry each label: training needs both, scoring needs at least one. */
export function labelCounts(traces: readonly RecordedTrace[]): LabelCounts {
  let malicious = 0;
  let benign = 0;
  for (const t of traces)
    if (t.episode.label === 'malicious') malicious++;
    else if (t.episode.label === 'benign') benign++;
  return { malicious, benign, unknown: traces.length - malicious - benign };
}
