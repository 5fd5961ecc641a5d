// The reference sandbox's real-time pacing: each stage replays its events with the gaps of their
// recorded timestamps (divided by the speed), as a sandbox running the sample would emit them.

import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { silentLogger } from '../../src/runtime/logger.ts';
import { sandboxClient, sandboxPackage } from '../../src/sandbox/grpc.ts';
import { ReferenceSandbox } from '../../src/sandbox/reference-sandbox.ts';
import { recordedTrace, until } from '../helpers.ts';

/** The contract's own client (Warden's receiver takes the batches as bytes). */
const contractClient = (port: number) =>
  new (sandboxPackage().Sandbox)(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;

test('real-time pacing follows the recorded timestamps', async (t) => {
  // Three calls 0 s, 1.5 s and 3 s apart (recordedTrace stamps call i at i ms: scale them).
  const base = recordedTrace('rt', 'malicious', ['NtOpenFile', 'NtReadFile', 'NtClose']);
  const trace = { ...base, events: base.events.map((e, i) => ({ ...e, timestamp: i * 1_500 })) };
  const sandbox = new ReferenceSandbox({
    name: 'rt',
    traces: [trace],
    benign: [],
    episodes: 1,
    concurrency: 1,
    realTime: { speed: 1 },
    log: silentLogger,
  });
  const port = await sandbox.start();
  const client = contractClient(port);
  const received: number[] = [];
  const call = (
    client.watch as (r: unknown) => grpc.ClientReadableStream<{ events?: { kind: string }[] }>
  )({
    receiverId: 'test',
    maxBatch: 64,
  });
  const t0 = Date.now();
  call.on('data', (b) => {
    for (const e of b.events ?? []) if (e.kind === 'telemetry') received.push(Date.now() - t0);
  });
  call.on('error', () => undefined);
  try {
    t.true(await until(async () => received.length >= 3, 10_000));
    // Never early (a slow machine can only make them later): each call after its recorded gap.
    t.true(received[1]! >= 1_400, `second call after ${received[1]} ms (recorded 1,500)`);
    t.true(received[2]! >= 2_900, `third call after ${received[2]} ms (recorded 3,000)`);
  } finally {
    call.cancel();
    client.close();
    await sandbox.stop();
  }
});

test('an ActionBatch the sandbox cannot read is answered INVALID_ARGUMENT, and the next one is served', async (t) => {
  const trace = recordedTrace('bad-acts', 'malicious', ['NtOpenFile', 'NtReadFile', 'NtClose']);
  const sandbox = new ReferenceSandbox({
    name: 'acts',
    traces: [trace],
    benign: [],
    episodes: 1,
    concurrency: 1,
    log: silentLogger,
  });
  const port = await sandbox.start();
  const client = sandboxClient(`127.0.0.1:${port}`);
  try {
    // The client sends Buffers as they are: a batch whose first action runs past its end.
    const error = await new Promise<grpc.ServiceError | null>((resolve) =>
      (
        client.raw.act as (b: Buffer, o: unknown, cb: (e: grpc.ServiceError | null) => void) => void
      )(Buffer.from([0x0a, 0x05, 0x0a]), { deadline: Date.now() + 5_000 }, resolve),
    );
    t.is(error?.code, grpc.status.INVALID_ARGUMENT);
    t.regex(error?.details ?? '', /malformed ActionBatch/);
    const acks = await client.act(
      [
        {
          actionId: 'x/1/0',
          episodeId: 'x',
          stage: 1,
          seq: 0,
          action: 0,
          context: {
            modelVersion: 'v',
            qValues: [0, 0, 0, 0, 0, 0],
            confidence: 0.5,
            source: 'model',
            topFeatures: [],
          },
        },
      ],
      5_000,
    );
    t.is(acks.length, 1);
    t.is(acks[0]!.actionId, 'x/1/0');
  } finally {
    await client.close();
    await sandbox.stop();
  }
});

test("the reference sandbox sends no more events in a batch than the receiver's max_batch", async (t) => {
  const apis = Array.from({ length: 40 }, (_, i) => `Api${i}`);
  const sandbox = new ReferenceSandbox({
    name: 'batches',
    traces: [recordedTrace('mb', 'malicious', apis)],
    benign: [],
    episodes: 1,
    concurrency: 1,
    log: silentLogger,
  });
  const port = await sandbox.start();
  const client = contractClient(port);
  const sizes: number[] = [];
  const call = (client.watch as (r: unknown) => grpc.ClientReadableStream<{ events?: unknown[] }>)({
    receiverId: 'test',
    maxBatch: 7,
  });
  call.on('data', (b) => sizes.push(b.events?.length ?? 0));
  call.on('error', () => undefined);
  try {
    // Its start, 40 events: in batches of at most 7 (its own batch size is 32).
    t.true(await until(async () => sizes.reduce((a, b) => a + b, 0) >= 41, 10_000));
    t.true(Math.max(...sizes) <= 7, `batches of ${sizes.join(', ')}`);
    t.true(sizes.filter((n) => n === 7).length >= 5, 'full batches of 7');
  } finally {
    call.cancel();
    client.close();
    await sandbox.stop();
  }
});
