// Inference pool latency and throughput: open-loop load at 1k, 20k and 100k decisions/s (latency
// from submit to answer, thread handoff included), a closed-loop maximum, the p99 while a new
// model version is hot-loaded at 20k/s, and the baseline in the same run: a direct
// single-thread session.run of batch 1.

import * as ort from 'onnxruntime-node';
import { InferencePool } from '../src/actors/inference/pool.ts';
import { hyperParameters } from '../src/actors/learner/hyper-parameters.ts';
import { initParams } from '../src/actors/learner/q-network.ts';
import { validateConfig } from '../src/config/validate.ts';
import { exportModel, modelFile } from '../src/models/store.ts';
import { tempDir } from '../test/temp-dir.ts';
import { fmtRate, median, printLatency, summarize, writeResult } from './lib.ts';

const DIM = 64;
const nowUs = () => Number(process.hrtime.bigint()) / 1000;

interface LoadResult {
  readonly offered: number;
  readonly achieved: number;
  readonly answered: number;
  readonly latency: ReturnType<typeof summarize>;
}

/** Open loop: request i is due at t0 + i/rate whatever happened before; the main thread spins. */
async function openLoop(
  pool: InferencePool,
  rate: number,
  seconds: number,
  during?: () => Promise<unknown>,
): Promise<LoadResult> {
  const total = Math.round(rate * seconds);
  const sentAt = new Float64Array(total + 1);
  const lat = new Float64Array(total);
  const states = Array.from({ length: 64 }, (_, k) =>
    Float32Array.from({ length: DIM }, (_, j) => ((k * 13 + j) % 97) / 97),
  );
  let sent = 0;
  let answered = 0;
  const t0 = nowUs();
  let side: Promise<unknown> | undefined;
  let lastYield = t0;
  while (answered < total) {
    const now = nowUs();
    while (sent < total && t0 + (sent * 1e6) / rate <= now) {
      const id = sent + 1;
      if (pool.submit(states[sent % 64]!, id) === 0) break; // rings full: retry next turn
      sentAt[id] = nowUs();
      sent++;
    }
    pool.drain((d) => {
      lat[answered++] = nowUs() - sentAt[d.requestId]!;
    });
    if (during && !side && sent >= total / 2) side = during();
    if (now - lastYield > 2_000) {
      // let comlink replies (hot reload) and timers through now and then
      lastYield = now;
      await new Promise((r) => setImmediate(r));
    }
  }
  await side;
  const elapsed = (nowUs() - t0) / 1e6;
  return { offered: rate, achieved: answered / elapsed, answered, latency: summarize(lat) };
}

async function closedLoop(
  pool: InferencePool,
  outstanding: number,
  seconds: number,
): Promise<number> {
  const state = new Float32Array(DIM).fill(0.5);
  let inFlight = 0;
  let done = 0;
  const end = nowUs() + seconds * 1e6;
  const t0 = nowUs();
  while (nowUs() < end) {
    while (inFlight < outstanding && pool.submit(state) !== 0) inFlight++;
    pool.drain(() => {
      inFlight--;
      done++;
    });
  }
  while (inFlight > 0) pool.drain(() => inFlight--);
  return done / ((nowUs() - t0) / 1e6);
}

async function directBaseline(path: string, calls: number) {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const x = new ort.Tensor('float32', new Float32Array(DIM).fill(0.5), [1, DIM]);
  for (let i = 0; i < 500; i++) await session.run({ state: x });
  const lat = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t = nowUs();
    await session.run({ state: x });
    lat[i] = nowUs() - t;
  }
  await session.release();
  return summarize(lat);
}

export async function run(args: string[]): Promise<void> {
  const runs = Number(args[0] ?? 3);
  const seconds = Number(args[1] ?? 3);
  const dir = tempDir('warden-bench-models-');
  const { config } = validateConfig({
    logging: { level: 'warn' },
    inference: { workers: 1, maxBatch: 256 },
  });
  const draft = {
    hyperParameters: hyperParameters(config),
    trainingEpisodes: 0,
    metrics: {
      finalLoss: 0,
      averageReward: 0,
      detectionAccuracy: 0,
      falsePositiveRate: 0,
      falseNegativeRate: 0,
    },
    engine: 'bench',
  };
  const v1 = await exportModel(dir, initParams([DIM, 256, 256, 6], false, 1), draft);
  const v2 = await exportModel(dir, initParams([DIM, 256, 256, 6], false, 2), draft, {
    makeLatest: false,
  });
  console.log(
    `inference bench: ${DIM}→256→256→6, ${config.inference.workers} worker, maxBatch ${config.inference.maxBatch}; ${runs} runs × ${seconds} s per point`,
  );

  const headline: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  const base = await directBaseline(modelFile(dir, v1.metadata.version), 20_000);
  printLatency('baseline: direct session.run, batch 1', base);
  headline['baseline direct batch-1 p50 µs'] = base.p50;
  headline['baseline direct batch-1 p99 µs'] = base.p99;
  headline['baseline direct batch-1 calls/s'] = 1e6 / base.mean;

  const pool = await InferencePool.start(config);
  await pool.loadLatest(dir);
  try {
    for (const rate of [1_000, 20_000, 100_000]) {
      const p99s: number[] = [];
      const p50s: number[] = [];
      const rates: number[] = [];
      let last: LoadResult | undefined;
      for (let r = 0; r < runs; r++) {
        last = await openLoop(pool, rate, seconds);
        p50s.push(last.latency.p50);
        p99s.push(last.latency.p99);
        rates.push(last.achieved);
        details[`open ${rate}/s run ${r + 1}`] = last;
      }
      printLatency(
        `open loop ${fmtRate(rate)} (achieved ${fmtRate(median(rates))})`,
        last!.latency,
      );
      headline[`open ${rate}/s p50 µs`] = median(p50s);
      headline[`open ${rate}/s p99 µs`] = median(p99s);
      headline[`open ${rate}/s achieved/s`] = median(rates);
    }
    const maxRates: number[] = [];
    for (let r = 0; r < runs; r++) maxRates.push(await closedLoop(pool, 1024, seconds));
    console.log(
      `  closed loop (1024 outstanding): ${fmtRate(median(maxRates))} decisions/s (runs ${maxRates.map(fmtRate).join(', ')})`,
    );
    headline['closed-loop max decisions/s'] = median(maxRates);

    const reloadP99: number[] = [];
    let useV2 = true;
    for (let r = 0; r < runs; r++) {
      const target = useV2 ? v2.metadata.version : v1.metadata.version;
      useV2 = !useV2;
      const res = await openLoop(pool, 20_000, seconds, () => pool.activate(dir, target));
      reloadP99.push(res.latency.p99);
      details[`hot reload at 20k/s run ${r + 1}`] = res;
      if (r === runs - 1) printLatency('open loop 20.0k/s with a hot reload', res.latency);
    }
    headline['open 20000/s during hot reload p99 µs'] = median(reloadP99);
    headline['hot reload p99 / steady p99'] = median(reloadP99) / headline['open 20000/s p99 µs']!;
    console.log(
      `  hot reload p99 ${median(reloadP99).toFixed(0)} µs vs steady ${headline['open 20000/s p99 µs']!.toFixed(0)} µs (×${headline['hot reload p99 / steady p99']!.toFixed(2)})`,
    );
    details.workers = await pool.stats();
  } finally {
    await pool.close();
  }
  writeResult('inference', headline, details);
}
