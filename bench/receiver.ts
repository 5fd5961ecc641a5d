// The receiver's per-event work on one thread: EventBatch bytes (as the reference sandbox sends
// them, 64 events a batch) → validated telemetry in columns. The receiver's decoder
// (src/actors/receiver/wire.ts) against, in the same process and interleaved round by round, the
// path it replaced: proto-loader's deserializer (protobufjs decode + toObject), validateTelemetry
// on each object, then the packer; and the receiver's whole per-batch work, the decoder followed by
// its ledger (src/actors/receiver/ledger.ts: what was accepted per open stage). Two data sets: the bundled Oliveira traces (one API call per
// event, no lists) and the CAPE reports (calls with arguments).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StreamLedger } from '../src/actors/receiver/ledger.ts';
import { decodeEventBatch } from '../src/actors/receiver/wire.ts';
import { importCape } from '../src/data/import-cape.ts';
import { importCsv } from '../src/data/import-csv.ts';
import { TelemetryPacker } from '../src/messages/packed-telemetry.ts';
import type { TelemetryEvent } from '../src/messages/telemetry.ts';
import { encodeEventBatch } from '../src/sandbox/event-batch.ts';
import { sandboxPackage } from '../src/sandbox/grpc.ts';
import { DefaultsCounter } from '../src/validation/defaults-counter.ts';
import { validateTelemetry } from '../src/validation/telemetry.ts';
import { fmt, fmtRate, median, printLatency, summarize, writeResult } from './lib.ts';

const DATA = new URL('../data/', import.meta.url).pathname;
const LIMITS = { maxEventBytes: 65_536, maxStringLength: 1_024, maxArrayLength: 256, maxDepth: 8 };
const BATCH = 64;

function batchesOf(events: readonly TelemetryEvent[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + BATCH <= events.length; i += BATCH) {
    const items = events.slice(i, i + BATCH).map((event, j) => ({
      telemetry: {
        sandboxId: 'bench',
        episodeId: `ep-${Math.floor((i + j) / 100)}`,
        stage: 1,
        seq: (i + j) % 100,
        timestampMs: 1_795_000_000_000 + i + j,
        event,
      },
    }));
    out.push(encodeEventBatch(items));
  }
  return out;
}

type Decode = (bytes: Buffer, counter: DefaultsCounter) => number;

const options = (counter: DefaultsCounter) => ({
  limits: LIMITS,
  counter,
  absentIsDefault: true,
  now: Date.now(),
  sandboxId: 'bench',
});

/** The receiver before wire.ts (the baseline). */
const protoLoader: Decode = (bytes, counter) => {
  const watch = sandboxPackage().Sandbox.service.Watch!;
  const batch = watch.responseDeserialize(bytes) as { events?: Record<string, unknown>[] };
  const items = batch.events ?? [];
  const packer = new TelemetryPacker(items.length);
  const opts = options(counter);
  for (const item of items) {
    const kind = item.kind as string;
    if (kind === 'telemetry') packer.add(validateTelemetry(item[kind], opts));
  }
  return packer.finish().count;
};

const wire: Decode = (bytes, counter) =>
  decodeEventBatch(bytes, options(counter), () => undefined).telemetry.count;

/** The decoder, then the ledger: one per pass, as one receiver's for its stream. */
let ledger = new StreamLedger(100_000);
const wireLedger: Decode = (bytes, counter) => {
  const batch = decodeEventBatch(bytes, options(counter), () => undefined);
  return ledger.accept(batch.telemetry, batch.lifecycle).telemetry.count;
};

const DECODERS = [
  ['protoLoader', protoLoader, 'proto-loader + validate'],
  ['wire', wire, 'wire.ts'],
  ['wireLedger', wireLedger, 'wire.ts + ledger.ts'],
] as const;

/** One pass over the batches: µs per batch, and events decoded. */
function pass(decode: Decode, batches: readonly Buffer[]): { us: number[]; events: number } {
  ledger = new StreamLedger(100_000);
  const counter = new DefaultsCounter();
  const us: number[] = [];
  let events = 0;
  for (const b of batches) {
    const t0 = performance.now();
    events += decode(b, counter);
    us.push((performance.now() - t0) * 1000);
  }
  return { us, events };
}

export async function run(args: string[]): Promise<void> {
  const rounds = Number(args[0] ?? 7);
  const names = JSON.parse(readFileSync(join(DATA, 'oliveira-balanced/api_names.json'), 'utf8'));
  const oliveira = importCsv(join(DATA, 'oliveira-balanced/api_calls.csv'), { names })
    .traces.slice(0, 400)
    .flatMap((t) => t.events);
  const cape = readdirSync(join(DATA, 'cape-reports'))
    .filter((f) => f.endsWith('.json.gz'))
    .flatMap((f) => importCape(join(DATA, 'cape-reports', f)).trace.events)
    .slice(0, 40_000);
  const sets = { oliveira: batchesOf(oliveira), cape: batchesOf(cape) };
  console.log(
    `receiver bench: EventBatch bytes of ${BATCH} events → validated columns, one thread, ${rounds} interleaved rounds`,
  );
  const headline: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  for (const [set, batches] of Object.entries(sets)) {
    const bytes = batches.reduce((n, b) => n + b.length, 0);
    console.log(
      `  ${set}: ${batches.length} batches, ${fmt(bytes / (batches.length * BATCH), 0)} bytes per event`,
    );
    // Warm both up (JIT, proto-loader's lazily built codecs), then alternate them.
    for (const [, decode] of DECODERS) pass(decode, batches);
    const rates: Record<string, number[]> = { protoLoader: [], wire: [], wireLedger: [] };
    const samples: Record<string, number[]> = { protoLoader: [], wire: [], wireLedger: [] };
    for (let r = 0; r < rounds; r++) {
      for (const [name, decode] of DECODERS) {
        const { us, events } = pass(decode, batches);
        const seconds = us.reduce((a, b) => a + b, 0) / 1e6;
        rates[name]!.push(events / seconds);
        samples[name]!.push(...us);
      }
    }
    for (const [name, , label] of DECODERS) {
      const s = summarize(samples[name]!);
      printLatency(`${set} ${label} per batch`, s);
      const rate = median(rates[name]!);
      console.log(
        `    ${fmtRate(rate)} events/s (median of ${rounds}), ${fmt(1e6 / rate)} µs per event`,
      );
      headline[`${set} ${name} events/s (median)`] = rate;
      details[`${set} ${name}`] = { perBatchUs: s, eventsPerSecond: rates[name] };
    }
    const speedUp = median(rates.wire!) / median(rates.protoLoader!);
    headline[`${set} speed-up`] = speedUp;
    console.log(`    speed-up ×${fmt(speedUp)}`);
    const ledgerCost = 1e6 / median(rates.wireLedger!) - 1e6 / median(rates.wire!);
    headline[`${set} ledger µs per event`] = ledgerCost;
    console.log(`    the ledger adds ${fmt(ledgerCost, 3)} µs per event`);
  }
  writeResult('receiver', headline, details);
}
