// End to end on one machine: two reference sandboxes over gRPC on loopback feeding the whole
// actor system (receivers, adapter + inference pool, dispatcher, episodes, DB writer on an
// embedded PostgreSQL, learner). As fast as possible and at fixed rates: events/s sustained with
// zero loss (sent by the sandboxes = received by Warden), and latency from an event leaving a
// sandbox to its action arriving back. No model is loaded, so every event gets a decision
// (the rule table decides at the end of the run): the heaviest decision load per event.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { validateConfig } from '../src/config/validate.ts';
import { importCsv } from '../src/data/import-csv.ts';
import { createPool } from '../src/db/connect.ts';
import { startEmbedded } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrations.ts';
import type { ThreadLoad } from '../src/runtime/host-protocol.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { ReplayStorage } from '../src/runtime/shared/replay-storage.ts';
import { ActorSystem } from '../src/runtime/system.ts';
import { ReferenceSandbox } from '../src/sandbox/reference-sandbox.ts';
import { tempDir } from '../test/temp-dir.ts';
import { fmtRate, printLatency, summarize, writeResult } from './lib.ts';

const DATA = new URL('../data/oliveira-balanced/', import.meta.url).pathname;

/** A span exporter that counts and drops: what tracing costs Warden, without a collector. */
export function countingExporter(): SpanExporter & { spans: number } {
  const e = {
    spans: 0,
    export(spans: ReadableSpan[], done: (r: { code: number }) => void) {
      e.spans += spans.length;
      done({ code: 0 });
    },
    shutdown: async () => undefined,
  };
  return e;
}

export interface PointResult {
  readonly sent: number;
  readonly elapsed: number;
  readonly lost: number;
  readonly decisions: number;
  readonly latency: ReturnType<typeof summarize>;
  readonly actors: Record<string, Record<string, number>>;
  readonly sandboxes: unknown[];
  /**
   * Per thread over the measured seconds (main runs the sandboxes too): event-loop utilisation
   * and, on Linux, CPU in cores (the thread's own CPU time over the wall time).
   */
  readonly utilisation: Record<string, { eventLoop: number; cores?: number; nice?: number }>;
}

type Loads = Record<string, ThreadLoad>;
const loadsOf = (s: Awaited<ReturnType<ActorSystem['stats']>>): Loads => ({
  'main (sandboxes, bench)': s.mainLoad,
  ...Object.fromEntries(s.threads.flatMap((t) => (t.load ? [[t.thread, t.load]] : []))),
});

/** One run of the whole system against two reference sandboxes (rate undefined = max). */
export async function runPoint(
  dbUrl: string,
  seconds: number,
  rate: number | undefined,
  traceExporter?: SpanExporter,
): Promise<PointResult> {
  const names = JSON.parse(readFileSync(join(DATA, 'api_names.json'), 'utf8'));
  const traces = importCsv(join(DATA, 'api_calls.csv'), { names }).traces;
  const benign = traces.filter((t) => t.episode.label === 'benign');
  const sandboxes = [0, 1].map(
    (k) =>
      new ReferenceSandbox({
        name: `s${k}`,
        traces: traces.filter((_, i) => i % 2 === k),
        benign,
        concurrency: Number(process.env.E2E_CONCURRENCY ?? 16),
        log: silentLogger,
        measureLatency: true,
        ...(rate ? { eventsPerSecond: rate / 2 } : {}),
      }),
  );
  const ports = await Promise.all(sandboxes.map((s) => s.start()));
  const { config } = validateConfig({
    logging: { level: 'silent' },
    sandboxes: sandboxes.map((s, i) => ({ name: s.name, address: `127.0.0.1:${ports[i]}` })),
    database: { url: dbUrl, journalDir: tempDir('warden-e2e-j-') },
    models: { dir: tempDir('warden-e2e-m-') },
    replay: { capacity: 1_000_000 },
    learning: { exportEvery: 1e8 },
    ...(process.env.E2E_PLACEMENT
      ? { runtime: { placement: JSON.parse(process.env.E2E_PLACEMENT) } }
      : {}),
    // Experiments: E2E_CONFIG='{"learning":{"maxUpdatesPerSecond":1}}' (sections replace the bench's).
    ...(process.env.E2E_CONFIG ? JSON.parse(process.env.E2E_CONFIG) : {}),
  });
  const system = new ActorSystem({
    config,
    shared: { replay: ReplayStorage.create({ capacity: 1_000_000, dim: 64 }).buffer },
    ...(traceExporter ? { traceExporter } : {}),
  });
  await system.start();
  // Warm-up: in the first seconds every worker still compiles its modules, and the learner loads
  // its held-out episodes after it starts (seconds of parsing beside the pipeline). Rate and
  // latency are measured from here on; loss is counted over the whole run.
  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  for (const end = Date.now() + 60_000; Date.now() < end; ) {
    const learner = (await system.stats()).threads
      .flatMap((t) => t.actors)
      .find((a) => a.actor === 'learner');
    if (!learner || learner.custom.dataLoaded === 1) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const sentBefore = sandboxes.reduce((n, s) => n + s.stats.eventsSent, 0);
  for (const s of sandboxes) s.latencies.length = 0;
  const t0 = Date.now();
  const loadsBefore = loadsOf(await system.stats());
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const loadsAfter = loadsOf(await system.stats());
  for (const s of sandboxes) s.pause();
  const sentTotal = sandboxes.reduce((n, s) => n + s.stats.eventsSent, 0);
  const sent = sentTotal - sentBefore;
  const elapsed = (Date.now() - t0) / 1000;
  // Let what is in flight arrive, then count both sides.
  await new Promise((r) => setTimeout(r, 1_500));
  const stats = await system.stats();
  const actors = Object.fromEntries(
    stats.threads.flatMap((t) => t.actors).map((a) => [a.actor, a.custom]),
  );
  const received = sandboxes.reduce((n, s) => n + (actors[`receiver:${s.name}`]?.events ?? 0), 0);
  const lifecycle = sandboxes.reduce((n, s) => n + s.stats.lifecycleSent, 0);
  const latency = summarize(sandboxes.flatMap((s) => s.latencies));
  await system.stop();
  await Promise.all(sandboxes.map((s) => s.stop()));
  return {
    sent,
    elapsed,
    lost: Math.max(0, sentTotal + lifecycle - received),
    decisions: actors.episodes?.decisions ?? 0,
    latency,
    actors,
    sandboxes: sandboxes.map((s) => s.stats),
    utilisation: Object.fromEntries(
      Object.entries(loadsAfter).flatMap(([thread, a]) => {
        const b = loadsBefore[thread];
        if (!b) return [];
        const active = a.activeMs - b.activeMs;
        const idle = a.idleMs - b.idleMs;
        if (active + idle <= 0) return [];
        const cores =
          a.cpuMs !== undefined && b.cpuMs !== undefined
            ? (a.cpuMs - b.cpuMs) / (active + idle)
            : undefined;
        return [
          [
            thread,
            {
              eventLoop: active / (active + idle),
              ...(cores === undefined ? {} : { cores }),
              ...(a.nice === undefined ? {} : { nice: a.nice }),
            },
          ],
        ];
      }),
    ),
  };
}

/** Streaming before the measured seconds of each point. */
const WARM_UP_MS = Number(process.env.E2E_WARMUP_S ?? 2) * 1000;

export async function withDatabase<T>(run: (url: string) => Promise<T>): Promise<T> {
  const dir = tempDir('warden-e2e-pg-');
  const server = await startEmbedded(join(dir, 'data'), silentLogger);
  try {
    const pool = createPool(server.url, silentLogger);
    const c = await pool.connect();
    await migrate(c);
    c.release();
    await pool.end();
    return await run(server.url);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true }); // the store of a run: up to a gigabyte
  }
}

/**
 * The points: E2E_POINTS="10000,max" picks some (default 2,000/s, 10,000/s, then max). The fixed
 * rates go first: after the full-speed point the database is still absorbing its writes
 * (checkpoint, autovacuum), which tripled the next point's p99 (10,000/s: 60-110 ms after it,
 * 10-30 ms on its own).
 */
function pointsToRun(): (number | undefined)[] {
  const chosen = process.env.E2E_POINTS?.split(',').map((p) => p.trim());
  if (!chosen) return [2_000, 10_000, undefined];
  return chosen.map((p) => {
    if (p === 'max') return undefined;
    const rate = Number(p);
    if (!(rate > 0)) throw new Error(`E2E_POINTS: '${p}' is neither max nor a rate in events/s`);
    return rate;
  });
}

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 10);
  const headline: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  console.log(
    `e2e bench: 2 reference sandboxes → Warden (all actors) on this ${(await import('node:os')).cpus().length}-core machine, ${seconds} s per point`,
  );
  await withDatabase(async (url) => {
    for (const rate of pointsToRun()) {
      const p = await runPoint(url, seconds, rate);
      const label = rate ? `${fmtRate(rate)} offered` : 'as fast as possible';
      console.log(
        `  ${label.padEnd(22)} ${fmtRate(p.sent / p.elapsed)} events/s sent, ${p.lost === 0 ? 'zero loss' : `${p.lost} not received`}; episodes ${p.actors.episodes?.completed ?? 0}`,
      );
      printLatency(`  event → action (${label})`, p.latency, 'ms');
      console.log(
        `    receiver → adapter hand-off (property 1, goal ≤ 100 ms): p99 ${(p.actors.adapter?.handoffP99Ms ?? 0).toFixed(1)} ms, max ${(p.actors.adapter?.handoffMaxMs ?? 0).toFixed(1)} ms (batches of the last 5 s, steady state)`,
      );
      console.log(
        `    where the time goes (thread: CPU in cores / event-loop busy): ${Object.entries(
          p.utilisation,
        )
          .map(
            ([thread, u]) =>
              `${thread}${u.nice ? ` (nice ${u.nice})` : ''} ${u.cores === undefined ? '—' : u.cores.toFixed(2)} / ${(u.eventLoop * 100).toFixed(0)}%`,
          )
          .join(', ')}`,
      );
      const key = rate ? `${rate}/s` : 'max';
      headline[`${key} events/s`] = p.sent / p.elapsed;
      headline[`${key} lost events`] = p.lost;
      headline[`${key} event→action p50 ms`] = p.latency.p50;
      headline[`${key} event→action p99 ms`] = p.latency.p99;
      headline[`${key} hand-off p99 ms`] = p.actors.adapter?.handoffP99Ms ?? 0;
      details[key] = {
        actors: p.actors,
        latency: p.latency,
        sandboxes: p.sandboxes,
        utilisation: p.utilisation,
      };
    }
  });
  writeResult('e2e', headline, details);
}
