// Worker side of the ring benchmark: a producer or consumer over either the SPSC ring or a
// MessagePort (postMessage), with timestamps from the process-wide monotonic clock.

import type { MessagePort } from 'node:worker_threads';
import { parentPort } from 'node:worker_threads';
import { SpscRing } from '../src/runtime/shared/spsc-ring.ts';

export interface RingBenchInit {
  readonly role: 'producer' | 'consumer';
  readonly transport: 'ring' | 'port';
  readonly ring?: SharedArrayBuffer;
  readonly port?: MessagePort;
  readonly items: number;
  readonly batch: number;
  /** Pause between batches (µs) for the latency runs; 0 = as fast as possible. */
  readonly gapUs: number;
  readonly base: string;
}

const now = (base: bigint) => Number(process.hrtime.bigint() - base); // ns since base

export async function main(init: RingBenchInit): Promise<void> {
  const base = BigInt(init.base);
  if (init.role === 'producer') {
    const ring = init.ring ? new SpscRing(init.ring) : undefined;
    let sent = 0;
    while (sent < init.items) {
      const n = Math.min(init.batch, init.items - sent);
      const t = now(base);
      if (ring) {
        let done = 0;
        while (done < n) {
          done += ring.pushBatch(n - done, (i, i32, _f, off) => {
            i32[off] = sent + done + i;
            i32[off + 1] = Math.floor(t / 2 ** 32);
            i32[off + 2] = t >>> 0;
          });
          if (done < n) ring.waitForSpace(10);
        }
      } else {
        const items = new Array(n);
        for (let i = 0; i < n; i++) items[i] = { seq: sent + i, t };
        init.port!.postMessage(items);
      }
      sent += n;
      if (init.gapUs > 0) {
        const until = now(base) + init.gapUs * 1000;
        while (now(base) < until) {
          /* paced open loop: spin (a timer would add ~1 ms of jitter) */
        }
      }
    }
    ring?.close();
    init.port?.postMessage('end');
    parentPort!.postMessage({ sent });
    return;
  }
  // consumer: latency of each item = read time − the time its batch was written
  const latencies = new Float64Array(init.items);
  let received = 0;
  let batches = 0;
  const t0 = now(base);
  if (init.ring) {
    const ring = new SpscRing(init.ring);
    for (;;) {
      const t = now(base);
      const n = ring.drain(1 << 16, (_i, i32, _f, off) => {
        latencies[received++] = t - (i32[off + 1]! * 2 ** 32 + (i32[off + 2]! >>> 0));
      });
      if (n > 0) batches++;
      else if (ring.waitForData(1_000) === 'closed' && ring.size === 0) break;
    }
  } else {
    await new Promise<void>((resolve) => {
      init.port!.on('message', (items: { seq: number; t: number }[] | 'end') => {
        if (items === 'end') return resolve();
        const t = now(base);
        batches++;
        for (const item of items) latencies[received++] = t - item.t;
      });
    });
    init.port!.close();
  }
  const seconds = (now(base) - t0) / 1e9;
  parentPort!.postMessage({ received, batches, seconds, latencies }, [latencies.buffer]);
}
