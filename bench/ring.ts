// SPSC ring vs postMessage between two worker threads: items/s as fast as possible, and handoff
// latency (write → read) at a paced rate, the consumer blocked in Atomics.wait or the event loop.

import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { SpscRing } from '../src/runtime/shared/spsc-ring.ts';
import { spawnWorker } from '../src/runtime/spawn.ts';
import { fmtRate, median, printLatency, summarize, writeResult } from './lib.ts';
import type { RingBenchInit } from './ring-worker.ts';

const WORKER = new URL('./ring-worker.ts', import.meta.url);

interface Outcome {
  received: number;
  batches: number;
  seconds: number;
  latencies: Float64Array;
}

async function pair(
  transport: 'ring' | 'port',
  items: number,
  batch: number,
  gapUs: number,
): Promise<Outcome> {
  const base = process.hrtime.bigint().toString();
  const common = { transport, items, batch, gapUs, base };
  let producerInit: RingBenchInit;
  let consumerInit: RingBenchInit;
  const transfer: { p: MessagePort[]; c: MessagePort[] } = { p: [], c: [] };
  if (transport === 'ring') {
    const ring = SpscRing.create(8192, 4);
    producerInit = { ...common, role: 'producer', ring: ring.buffer };
    consumerInit = { ...common, role: 'consumer', ring: ring.buffer };
  } else {
    const { port1, port2 } = new MessageChannel();
    producerInit = { ...common, role: 'producer', port: port1 };
    consumerInit = { ...common, role: 'consumer', port: port2 };
    transfer.p.push(port1);
    transfer.c.push(port2);
  }
  const consumer = spawnWorker(WORKER, consumerInit, 'bench-consumer', transfer.c);
  const result = once(consumer, 'message');
  await new Promise((r) => setTimeout(r, 300)); // let the consumer reach its wait
  const producer = spawnWorker(WORKER, producerInit, 'bench-producer', transfer.p);
  const [outcome] = (await result) as [Outcome];
  await Promise.all([producer.terminate(), consumer.terminate()]);
  return outcome;
}

type MessagePort = import('node:worker_threads').MessagePort;

export async function run(args: string[]): Promise<void> {
  const runs = Number(args[0] ?? 3);
  const headline: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  console.log(`ring bench: ${runs} runs each; 2 worker threads (producer, consumer)`);

  for (const batch of [1, 32]) {
    for (const transport of ['ring', 'port'] as const) {
      const rates: number[] = [];
      for (let r = 0; r < runs; r++) {
        const o = await pair(transport, 2_000_000, batch, 0);
        if (o.received !== 2_000_000) throw new Error(`${transport} lost items: ${o.received}`);
        rates.push(o.received / o.seconds);
      }
      const key = `${transport === 'ring' ? 'ring' : 'postMessage'} throughput batch ${batch} items/s`;
      headline[key] = median(rates);
      console.log(
        `  ${key.padEnd(44)} ${fmtRate(median(rates))}  (runs: ${rates.map(fmtRate).join(', ')})`,
      );
    }
  }

  // Paced: a batch of 32 every 500 µs (64k items/s); the consumer sleeps between batches, so the
  // figure includes the thread wake-up.
  for (const transport of ['ring', 'port'] as const) {
    const p50s: number[] = [];
    const p99s: number[] = [];
    let last: ReturnType<typeof summarize> | undefined;
    for (let r = 0; r < runs; r++) {
      const o = await pair(transport, 64_000, 32, 500);
      const s = summarize(Array.from(o.latencies.subarray(0, o.received), (ns) => ns / 1000));
      p50s.push(s.p50);
      p99s.push(s.p99);
      last = s;
      details[`${transport} paced run ${r + 1}`] = s;
    }
    const name = transport === 'ring' ? 'ring' : 'postMessage';
    printLatency(`${name} handoff latency, 32 per 500 µs`, last!);
    headline[`${name} handoff p50 µs (median of runs)`] = median(p50s);
    headline[`${name} handoff p99 µs (median of runs)`] = median(p99s);
  }
  for (const [k, v] of Object.entries(headline)) console.log(`  ${k.padEnd(50)} ${v.toFixed(1)}`);
  writeResult('ring', headline, details);
}
