// Benchmark helpers: percentiles, a uniform result record, JSON under bench/results/ and a
// comparison with the previous result of the same benchmark (before/after in one command).

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

export const RESULTS_DIR = new URL('./results/', import.meta.url).pathname;

export interface LatencySummary {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Percentiles of samples (any unit; the caller names it). */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sum / sorted.length,
  };
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const fmt = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
export const fmtRate = (v: number) => `${(v / 1000).toFixed(1)}k/s`;

export function printLatency(label: string, s: LatencySummary, unit = 'µs'): void {
  console.log(
    `  ${label.padEnd(44)} p50 ${fmt(s.p50)} ${unit}  p95 ${fmt(s.p95)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}  (n=${s.n})`,
  );
}

function previous(name: string): { file: string; result: Record<string, unknown> } | undefined {
  let files: string[] = [];
  try {
    files = readdirSync(RESULTS_DIR)
      .filter((f) => f.startsWith(`${name}-`) && f.endsWith('.json'))
      .sort();
  } catch {
    return undefined;
  }
  const file = files.at(-1);
  return file
    ? { file, result: JSON.parse(readFileSync(join(RESULTS_DIR, file), 'utf8')) }
    : undefined;
}

/** Writes the result and prints how each headline figure moved against the previous run. */
export function writeResult(
  name: string,
  headline: Record<string, number>,
  details: Record<string, unknown>,
): string {
  const before = previous(name);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(RESULTS_DIR, `${name}-${stamp}.json`);
  const result = {
    bench: name,
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    // How it was run: the experiment knobs (E2E_CONFIG, E2E_POINTS, …) change the figures.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(E2E|BENCH)_/.test(k))),
    headline,
    details,
  };
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresult: ${file}`);
  if (before) {
    const old = before.result.headline as Record<string, number> | undefined;
    console.log(`compared with ${before.file}:`);
    for (const [k, v] of Object.entries(headline)) {
      const o = old?.[k];
      if (typeof o === 'number' && o !== 0)
        console.log(`  ${k.padEnd(40)} ${fmt(o)} → ${fmt(v)}  (×${fmt(v / o, 3)})`);
    }
  }
  return file;
}
