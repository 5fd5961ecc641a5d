// `warden validate`: a data-quality report for recorded telemetry — counts, missing and
// out-of-range fields, unreadable lines, duplicate episodes, label balance — and a verdict.

import type { RecordedTrace } from '../messages/recorded.ts';
import type { ReadReport } from './jsonl.ts';

export interface QualityThresholds {
  /** Largest share of events that may have needed a default for some field. */
  readonly maxDefaultedShare: number;
  /** Largest share of lines that may be unreadable. */
  readonly maxBadLineShare: number;
  /** Smallest share of the minority label among labelled episodes (0 disables). */
  readonly minMinorityShare: number;
}

export const DEFAULT_THRESHOLDS: QualityThresholds = {
  maxDefaultedShare: 0.01,
  maxBadLineShare: 0.001,
  minMinorityShare: 0,
};

export interface QualityReport {
  readonly episodes: number;
  readonly events: number;
  readonly lines: number;
  readonly badLines: number;
  readonly firstBadLines: readonly { line: number; error: string }[];
  readonly orphanEvents: number;
  readonly emptyEpisodes: number;
  readonly headerCountMismatches: number;
  readonly labels: Readonly<Record<string, number>>;
  readonly distinctSequences: number;
  /** Episodes whose API-call sequence already appeared in an earlier episode. */
  readonly duplicateEpisodes: number;
  /** Same sequence seen with both labels. */
  readonly conflictingSequences: number;
  readonly defaultsPerField: Readonly<Record<string, number>>;
  readonly rejected: Readonly<Record<string, number>>;
  readonly eventsPerEpisode: {
    readonly min: number;
    readonly median: number;
    readonly max: number;
  };
  readonly problems: readonly string[];
  readonly pass: boolean;
}

export function qualityReport(
  traces: readonly RecordedTrace[],
  read: ReadReport,
  thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
): QualityReport {
  const labels: Record<string, number> = {};
  const seen = new Map<string, Set<string>>();
  let duplicates = 0;
  let events = 0;
  let empty = 0;
  let mismatches = 0;
  const lengths: number[] = [];
  for (const { episode, events: ev } of traces) {
    labels[episode.label] = (labels[episode.label] ?? 0) + 1;
    events += ev.length;
    lengths.push(ev.length);
    if (ev.length === 0) empty++;
    if (episode.events !== ev.length) mismatches++;
    const key = episode.sequenceHash || `episode:${episode.episodeId}`;
    const labelsOfSeq = seen.get(key);
    if (labelsOfSeq) {
      duplicates++;
      labelsOfSeq.add(episode.label);
    } else seen.set(key, new Set([episode.label]));
  }
  lengths.sort((a, b) => a - b);
  const conflicting = [...seen.values()].filter(
    (s) => s.has('malicious') && s.has('benign'),
  ).length;
  const defaults = read.counter.defaults();
  const defaulted = Object.values(defaults).reduce((a, b) => a + b, 0);
  const problems: string[] = [];
  if (traces.length === 0) problems.push('no episodes');
  if (events > 0 && defaulted / events > thresholds.maxDefaultedShare) {
    problems.push(
      `${defaulted} field defaults over ${events} events exceed ${(thresholds.maxDefaultedShare * 100).toFixed(1)}%`,
    );
  }
  if (read.lines > 0 && read.badLines.length / read.lines > thresholds.maxBadLineShare) {
    problems.push(`${read.badLines.length} unreadable lines of ${read.lines}`);
  }
  if (mismatches > 0)
    problems.push(`${mismatches} episode headers disagree with the number of events that follow`);
  const m = labels.malicious ?? 0;
  const b = labels.benign ?? 0;
  if (
    thresholds.minMinorityShare > 0 &&
    m + b > 0 &&
    Math.min(m, b) / (m + b) < thresholds.minMinorityShare
  ) {
    problems.push(
      `label balance ${m} malicious / ${b} benign is below ${(thresholds.minMinorityShare * 100).toFixed(0)}% minority`,
    );
  }
  return {
    episodes: traces.length,
    events,
    lines: read.lines,
    badLines: read.badLines.length,
    firstBadLines: read.badLines.slice(0, 5),
    orphanEvents: read.orphanEvents,
    emptyEpisodes: empty,
    headerCountMismatches: mismatches,
    labels,
    distinctSequences: seen.size,
    duplicateEpisodes: duplicates,
    conflictingSequences: conflicting,
    defaultsPerField: defaults,
    rejected: read.counter.rejected(),
    eventsPerEpisode: {
      min: lengths[0] ?? 0,
      median: lengths[Math.floor(lengths.length / 2)] ?? 0,
      max: lengths.at(-1) ?? 0,
    },
    problems,
    pass: problems.length === 0,
  };
}
