// Actions over ActStream (src/sandbox/grpc.ts), against real gRPC servers on 127.0.0.1: acks come
// back per batch in order, a sandbox with Act only gets unary calls, and a batch past its
// deadline fails alone with the stream, the next batch going out on a new one.

import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import {
  type ActionAckWire,
  type ActionRequestWire,
  channelOptions,
  sandboxClient,
  sandboxPackage,
} from '../../src/sandbox/grpc.ts';

type Batch = { actions?: ActionRequestWire[] };

const ack = (a: ActionRequestWire): ActionAckWire => ({
  actionId: a.actionId,
  confirmed: true,
  applied: true,
  stageEnded: false,
  detail: 'applied',
  timestampMs: 1,
});

const action = (id: string): ActionRequestWire => ({
  actionId: id,
  episodeId: 'e',
  stage: 1,
  seq: 0,
  action: 0,
  context: {
    modelVersion: 'rules',
    qValues: [0, 0, 0, 0, 0, 0],
    confidence: 1,
    source: 'rules',
    topFeatures: [],
  },
});

async function serve(
  impl: grpc.UntypedServiceImplementation,
): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server(channelOptions);
  server.addService(sandboxPackage().Sandbox.service, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { port, server };
}

test('batches on one stream: each gets its own acks, in order, however many are in flight', async (t) => {
  let streams = 0;
  let unary = 0;
  const { port, server } = await serve({
    act: (call: grpc.ServerUnaryCall<Batch, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      unary++;
      cb(null, { acks: (call.request.actions ?? []).map(ack) });
    },
    actStream: (call: grpc.ServerDuplexStream<Batch, unknown>) => {
      streams++;
      call.on('data', (b: Batch) => call.write({ acks: (b.actions ?? []).map(ack) }));
      call.on('end', () => call.end());
    },
  });
  const client = sandboxClient(`127.0.0.1:${port}`);
  try {
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.act([action(`a${i}`), action(`b${i}`)], 5_000)),
    );
    t.deepEqual(
      replies.map((acks) => acks.map((a) => a.actionId)),
      Array.from({ length: 50 }, (_, i) => [`a${i}`, `b${i}`]),
    );
    t.true(client.streaming);
    t.is(streams, 1, 'one stream carried every batch');
    t.is(unary, 0);
  } finally {
    await client.close();
    server.forceShutdown();
  }
});

test('a sandbox without ActStream gets unary Act calls, the first batch included', async (t) => {
  let unary = 0;
  const { port, server } = await serve({
    act: (call: grpc.ServerUnaryCall<Batch, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      unary++;
      cb(null, { acks: (call.request.actions ?? []).map(ack) });
    },
  });
  const client = sandboxClient(`127.0.0.1:${port}`);
  try {
    const first = await client.act([action('x')], 5_000);
    const second = await client.act([action('y')], 5_000);
    t.deepEqual([first[0]?.actionId, second[0]?.actionId], ['x', 'y']);
    t.false(client.streaming);
    t.is(unary, 2);
  } finally {
    await client.close();
    server.forceShutdown();
  }
});

test('a batch past its deadline fails with the stream; the next batch goes out on a new stream', async (t) => {
  let streams = 0;
  const { port, server } = await serve({
    actStream: (call: grpc.ServerDuplexStream<Batch, unknown>) => {
      const n = ++streams;
      call.on('data', (b: Batch) => {
        if (n === 1) return; // the first stream never answers
        call.write({ acks: (b.actions ?? []).map(ack) });
      });
      call.on('error', () => undefined);
      call.on('end', () => call.end());
    },
  });
  const client = sandboxClient(`127.0.0.1:${port}`);
  try {
    const error = await client.act([action('late')], 200).catch((e: grpc.ServiceError) => e);
    t.is((error as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED);
    const acks = await client.act([action('next')], 5_000);
    t.deepEqual(
      acks.map((a) => a.actionId),
      ['next'],
    );
    t.is(streams, 2);
  } finally {
    await client.close();
    server.forceShutdown();
  }
});
