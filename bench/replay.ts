// Replay storage at 1M × 64: append rate, sample latency for batch 64 and 256 (uniform and
// prioritized, 3-step returns), bytes per transition. Baseline in the same run: the seed's
// design, an array of transition objects sampled by index and copied into a batch.

import type { Experience } from '../src/messages/experience.ts';
import {
  createSampleBatch,
  ReplayStorage,
  replayBytes,
  type SampleOptions,
} from '../src/runtime/shared/replay-storage.ts';
import { fmt, fmtRate, median, printLatency, summarize, writeResult } from './lib.ts';

const CAPACITY = 1_000_000;
const DIM = 64;
const EPISODE = 50;

function episode(id: number): Experience[] {
  return Array.from({ length: EPISODE }, (_, s) => ({
    state: new Float32Array(DIM).fill(s / EPISODE),
    nextState: new Float32Array(DIM).fill((s + 1) / EPISODE),
    action: (s % 6) as Experience['action'],
    reward: s === EPISODE - 1 ? 1 : -0.01,
    done: s === EPISODE - 1,
    episode: id,
    stage: 1,
  }));
}

function timeCalls(calls: number, fn: () => void): Float64Array {
  const out = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out;
}

export async function run(args: string[]): Promise<void> {
  const runs = Number(args[0] ?? 3);
  console.log(
    `replay bench: capacity ${CAPACITY.toLocaleString('en')}, dim ${DIM}, ${runs} runs, episodes of ${EPISODE}`,
  );
  const eps = Array.from({ length: 64 }, (_, i) => episode(i));
  const replay = new ReplayStorage(
    ReplayStorage.create({ capacity: CAPACITY, dim: DIM }).buffer,
    1,
  );
  const baseline: Experience[] = [];

  const addRates: number[] = [];
  const baseAddRates: number[] = [];
  const sampleRuns: Record<string, number[]> = {};
  const summaries: Record<string, unknown> = {};
  const record = (key: string, p50: number) => {
    sampleRuns[key] = [...(sampleRuns[key] ?? []), p50];
  };
  for (let r = 0; r < runs; r++) {
    // Append: fill the whole capacity once per run (the last runs overwrite the oldest).
    let t0 = performance.now();
    for (let n = 0; n < CAPACITY; n += EPISODE) replay.append(eps[(n / EPISODE) % eps.length]!);
    addRates.push(CAPACITY / ((performance.now() - t0) / 1000));

    baseline.length = 0;
    t0 = performance.now();
    for (let n = 0; n < CAPACITY; n += EPISODE) {
      for (const e of eps[(n / EPISODE) % eps.length]!)
        baseline.push({ ...e, state: e.state.slice(), nextState: e.nextState.slice() });
    }
    baseAddRates.push(CAPACITY / ((performance.now() - t0) / 1000));

    for (const batch of [64, 256]) {
      const out = createSampleBatch(batch, DIM);
      for (const [prioritized, nStep] of [
        [false, 1],
        [false, 3],
        [true, 3],
      ] as const) {
        const opts: SampleOptions = { prioritized, nStep, gamma: 0.99, alpha: 0.6, beta: 0.4 };
        if (prioritized) replay.syncPriorities(opts.alpha);
        timeCalls(500, () => replay.sample(batch, opts, out)); // warm-up
        const kind = `${prioritized ? 'prioritized' : 'uniform'} ${nStep}-step`;
        const pick = summarize(timeCalls(5_000, () => replay.sampleIndices(batch, opts, out)));
        const full = summarize(timeCalls(5_000, () => replay.sample(batch, opts, out)));
        for (const [key, s] of [
          [`sample ${batch} ${kind}`, pick],
          [`sample+gather ${batch} ${kind}`, full],
        ] as const) {
          record(key, s.p50);
          summaries[`${key} run ${r + 1}`] = s;
          if (r === runs - 1) printLatency(key, s);
        }
      }
      const states = new Float32Array(batch * DIM);
      const next = new Float32Array(batch * DIM);
      const base = summarize(
        timeCalls(5_000, () => {
          for (let i = 0; i < batch; i++) {
            const e = baseline[(Math.random() * baseline.length) | 0]!;
            states.set(e.state, i * DIM);
            next.set(e.nextState, i * DIM);
          }
        }),
      );
      record(`baseline sample ${batch}`, base.p50);
      if (r === runs - 1) printLatency(`baseline: array of objects, sample ${batch}`, base);
    }
  }
  baseline.length = 0;

  const bytes = replayBytes({ capacity: CAPACITY, dim: DIM }) / CAPACITY;
  const raw = DIM * 4 * 2 + 4 + 4 + 4 + 1 + 1;
  const headline: Record<string, number> = {
    'append transitions/s (median)': median(addRates),
    'baseline append transitions/s (median)': median(baseAddRates),
    'bytes per transition': bytes,
    'overhead vs raw columns': bytes / raw,
  };
  for (const [k, v] of Object.entries(sampleRuns))
    headline[`${k} p50 µs (median of runs)`] = median(v);
  console.log(`  append: ${fmtRate(median(addRates))} (baseline ${fmtRate(median(baseAddRates))})`);
  console.log(`  bytes per transition: ${fmt(bytes, 1)} vs raw ${raw} (×${fmt(bytes / raw, 3)})`);
  for (const [k, v] of Object.entries(headline)) console.log(`  ${k.padEnd(52)} ${fmt(v)}`);
  writeResult('replay', headline, { capacity: CAPACITY, dim: DIM, runs, summaries });
}
