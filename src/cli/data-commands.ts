// `warden import csv|cape` and `warden validate`: recorded telemetry in, a quality verdict out.

import { importCape } from '../data/import-cape.ts';
import { importCsv, readNamesTable } from '../data/import-csv.ts';
import { readRecorded, writeRecorded } from '../data/jsonl.ts';
import { DEFAULT_THRESHOLDS, qualityReport } from '../data/quality.ts';
import type { Label } from '../messages/episode.ts';
import type { RecordedTrace } from '../messages/recorded.ts';

type Out = NodeJS.WritableStream;

export async function importCsvCommand(
  file: string,
  opts: { out: string; names?: string; label?: string },
  out: Out,
): Promise<number> {
  const names = opts.names ? readNamesTable(opts.names) : undefined;
  const result = importCsv(file, {
    ...(names ? { names } : {}),
    ...(opts.label ? { labelColumn: opts.label } : {}),
  });
  const lines = await writeRecorded(opts.out, result.traces);
  const events = result.traces.reduce((n, t) => n + t.events.length, 0);
  out.write(
    `imported ${result.traces.length} episodes, ${events} events (${lines} lines) → ${opts.out}\n`,
  );
  for (const s of result.skippedRows.slice(0, 10)) out.write(`skipped row ${s.row}: ${s.reason}\n`);
  if (result.skippedRows.length > 10)
    out.write(`… ${result.skippedRows.length - 10} more rows skipped\n`);
  if (result.unknownIds > 0)
    out.write(`warning: ${result.unknownIds} call ids not in the names table (kept as api_<id>)\n`);
  if (result.traces.length === 0 && result.skippedRows.length === 0)
    out.write(`${file}: no data rows below the header\n`);
  return result.traces.length > 0 ? 0 : 1;
}

export async function importCapeCommand(
  files: string[],
  opts: { out: string; label?: string },
  out: Out,
): Promise<number> {
  const traces: RecordedTrace[] = [];
  let failed = 0;
  for (const file of files) {
    try {
      const r = importCape(file, (opts.label as Label | undefined) ?? 'malicious');
      traces.push(r.trace);
      out.write(
        `${file}: ${r.trace.events.length} calls from ${r.processes} processes${r.trace.episode.family ? `, family ${r.trace.episode.family}` : ''}\n`,
      );
      for (const note of r.notes) out.write(`  note: ${note}\n`);
    } catch (error) {
      failed++;
      out.write(`${file}: error: ${(error as Error).message}\n`);
    }
  }
  await writeRecorded(opts.out, traces);
  out.write(
    `imported ${traces.length} reports → ${opts.out}${failed ? `; ${failed} failed` : ''}\n`,
  );
  return failed === 0 ? 0 : 1;
}

export async function validateCommand(
  file: string,
  opts: { json?: boolean; minMinority?: number },
  out: Out,
): Promise<number> {
  const { traces, report } = await readRecorded(file);
  const thresholds = {
    ...DEFAULT_THRESHOLDS,
    ...(opts.minMinority === undefined ? {} : { minMinorityShare: opts.minMinority }),
  };
  const q = qualityReport(traces, report, thresholds);
  if (opts.json) out.write(`${JSON.stringify(q, null, 2)}\n`);
  else {
    out.write(`${file}\n`);
    out.write(
      `  episodes ${q.episodes} (${q.emptyEpisodes} empty), events ${q.events}, lines ${q.lines}\n`,
    );
    out.write(
      `  events per episode: min ${q.eventsPerEpisode.min}, median ${q.eventsPerEpisode.median}, max ${q.eventsPerEpisode.max}\n`,
    );
    out.write(
      `  labels: ${Object.entries(q.labels)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}\n`,
    );
    out.write(
      `  distinct sequences ${q.distinctSequences}; duplicate episodes ${q.duplicateEpisodes}; sequences with both labels ${q.conflictingSequences}\n`,
    );
    out.write(`  unreadable lines ${q.badLines}; events without a header ${q.orphanEvents}\n`);
    const d = Object.entries(q.defaultsPerField);
    out.write(
      `  defaults applied: ${d.length === 0 ? 'none' : d.map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
    );
    for (const b of q.firstBadLines) out.write(`  line ${b.line}: ${b.error}\n`);
    for (const p of q.problems) out.write(`  problem: ${p}\n`);
    out.write(q.pass ? '  PASS\n' : '  FAIL\n');
  }
  return q.pass ? 0 : 1;
}
