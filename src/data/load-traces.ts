// Recorded traces from a file: a labelled CSV (with api_names.json beside it, or a names table)
// or telemetry JSON Lines.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RecordedTrace } from '../messages/recorded.ts';
import { importCsv } from './import-csv.ts';
import { readRecorded } from './jsonl.ts';

export async function loadTraces(path: string, namesPath?: string): Promise<RecordedTrace[]> {
  if (path.endsWith('.csv')) {
    const guess = join(dirname(path), 'api_names.json');
    const names = namesPath ?? (existsSync(guess) ? guess : undefined);
    return importCsv(path, names ? { names: JSON.parse(readFileSync(names, 'utf8')) } : {}).traces;
  }
  return (await readRecorded(path)).traces;
}
