// What OpenTelemetry tracing costs the decision path (issue goal: under 5% of decision
// throughput when on). The whole system at full speed against two reference sandboxes, tracing
// off and on alternately in the same process (off, on, off, on, …); spans are created, batched
// in each worker, forwarded to main and handed to an exporter that counts and drops them, so the
// figure is Warden's own cost, not a collector's.

import { countingExporter, type PointResult, runPoint, withDatabase } from './e2e.ts';
import { fmtRate, writeResult } from './lib.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 8);
  const rounds = Number(args[1] ?? 3);
  const off: PointResult[] = [];
  const on: (PointResult & { spans: number })[] = [];
  console.log(`tracing bench: ${rounds} rounds of off/on, ${seconds} s each, full speed`);
  await withDatabase(async (url) => {
    for (let r = 0; r < rounds; r++) {
      const a = await runPoint(url, seconds, undefined);
      off.push(a);
      const exporter = countingExporter();
      const b = await runPoint(url, seconds, undefined, exporter);
      on.push({ ...b, spans: exporter.spans });
      console.log(
        `  round ${r + 1}: off ${fmtRate(a.decisions / a.elapsed)} decisions/s, on ${fmtRate(b.decisions / b.elapsed)} decisions/s (${exporter.spans.toLocaleString('en')} spans), p99 ${a.latency.p99.toFixed(0)} / ${b.latency.p99.toFixed(0)} ms`,
      );
    }
  });
  const rate = (p: PointResult) => p.decisions / p.elapsed;
  const offRate = median(off.map(rate));
  const onRate = median(on.map(rate));
  const overhead = (1 - onRate / offRate) * 100;
  console.log(
    `  median decisions/s: off ${fmtRate(offRate)}, on ${fmtRate(onRate)} → overhead ${overhead.toFixed(1)}% (goal < 5%)`,
  );
  writeResult(
    'tracing',
    {
      'decisions/s tracing off (median)': offRate,
      'decisions/s tracing on (median)': onRate,
      'overhead %': overhead,
      'spans per decision': median(on.map((p) => p.spans / Math.max(1, p.decisions))),
      'p99 ms off (median)': median(off.map((p) => p.latency.p99)),
      'p99 ms on (median)': median(on.map((p) => p.latency.p99)),
    },
    {
      off: off.map((p) => ({
        decisions: p.decisions,
        elapsed: p.elapsed,
        lost: p.lost,
        latency: p.latency,
      })),
      on: on.map((p) => ({
        decisions: p.decisions,
        elapsed: p.elapsed,
        lost: p.lost,
        spans: p.spans,
        latency: p.latency,
      })),
    },
  );
}
