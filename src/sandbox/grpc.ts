// The sandbox contract (proto/warden/sandbox/v1/sandbox.proto) loaded for grpc-js: the service
// definition for servers and a typed client for Warden's receiver and dispatcher.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { settlesWithin } from '../runtime/within.ts';
import {
  type ClientTls,
  channelCredentials,
  DEFAULT_TRANSPORT,
  type TransportPolicy,
} from '../security/tls.ts';
import { type ActionRequestLike, encodeActionBatch } from './action-batch.ts';

export const SANDBOX_PROTO_PATH = new URL(
  '../../proto/warden/sandbox/v1/sandbox.proto',
  import.meta.url,
).pathname;

let pkg: { Sandbox: grpc.ServiceClientConstructor } | undefined;

export function sandboxPackage(): { Sandbox: grpc.ServiceClientConstructor } {
  if (!pkg) {
    const def = protoLoader.loadSync(SANDBOX_PROTO_PATH, {
      keepCase: false,
      longs: Number,
      enums: Number,
      defaults: false,
      oneofs: true,
    });
    // biome-ignore lint/suspicious/noExplicitAny: grpc-js's loaded package is untyped
    pkg = (grpc.loadPackageDefinition(def) as any).warden.sandbox.v1;
  }
  return pkg!;
}

/**
 * Message size limit on a sandbox channel unless its maxMessageBytes says otherwise (an EventBatch
 * of 32 call-level events is ~20 KiB).
 */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export const channelOptions: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
};

export interface ActionRequestWire {
  actionId: string;
  episodeId: string;
  stage: number;
  seq: number;
  action: number;
  context: {
    modelVersion: string;
    qValues: number[];
    confidence: number;
    source: string;
    topFeatures: { index: number; name: string; value: number; weight: number }[];
  };
}

export interface ActionAckWire {
  actionId: string;
  confirmed: boolean;
  applied: boolean;
  stageEnded: boolean;
  detail: string;
  timestampMs: number;
}

export interface SandboxClient {
  readonly raw: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  /** Sends a batch of actions and resolves with their acks (ActStream, else Act). */
  act(actions: readonly ActionRequestLike[], deadlineMs: number): Promise<ActionAckWire[]>;
  /** Whether act() goes over the stream (false once the sandbox answered UNIMPLEMENTED). */
  readonly streaming: boolean;
  /**
   * Refuses new batches and half-closes the action stream; resolves once the batches in flight
   * have their acks (or failed), at the latest after `graceMs`. Then the channel is closed.
   */
  close(graceMs?: number): Promise<void>;
}

type Acks = { acks?: ActionAckWire[] };
/** Requests go out as ActionBatch bytes already encoded (action-batch.ts). */
type ActCall = grpc.ClientDuplexStream<Buffer, Acks>;

/** A batch sent on the action stream, waiting for its acks (they come back in order). */
interface InFlight {
  readonly batch: Buffer;
  readonly deadline: number;
  readonly resolve: (acks: ActionAckWire[]) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const streamError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), {
    code,
    details,
    metadata: new grpc.Metadata(),
  });

/**
 * Actions over one long-lived ActStream per sandbox (proto: answered in order). Any failure of
 * the stream — an error, the sandbox ending it, a batch past its deadline — fails every batch
 * still waiting, as a failed Act call would, and the next batch opens a new stream.
 */
class ActionStream {
  readonly #raw: SandboxClient['raw'];
  #call: ActCall | undefined;
  readonly #waiting: InFlight[] = [];
  #closed = false;
  #drained: (() => void) | undefined;
  unary = false;

  constructor(raw: SandboxClient['raw']) {
    this.#raw = raw;
  }

  act(actions: readonly ActionRequestLike[], deadlineMs: number): Promise<ActionAckWire[]> {
    if (this.#closed)
      return Promise.reject(streamError(grpc.status.CANCELLED, 'the client is closing'));
    const batch = encodeActionBatch(actions);
    if (this.unary) return unaryAct(this.#raw, batch, Date.now() + deadlineMs);
    const call = this.#open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.#fail(
            call,
            streamError(grpc.status.DEADLINE_EXCEEDED, `no acks within ${deadlineMs} ms`),
          ),
        deadlineMs,
      );
      this.#waiting.push({ batch, deadline: Date.now() + deadlineMs, resolve, reject, timer });
      call.write(batch);
    });
  }

  /** Half-closes the stream: the sandbox answers what it has, then ends it. */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    const call = this.#call;
    if (!call) return;
    call.end();
    if (this.#waiting.length > 0)
      await settlesWithin(
        new Promise<void>((resolve) => {
          this.#drained = resolve;
        }),
        graceMs,
      );
    this.#fail(call, streamError(grpc.status.CANCELLED, 'the client closed'));
  }

  #open(): ActCall {
    if (this.#call) return this.#call;
    const call = (this.#raw.actStream as () => ActCall)();
    call.on('data', (reply: Acks) => {
      const head = this.#waiting.shift();
      if (!head) {
        this.#fail(call, streamError(grpc.status.INTERNAL, 'acks for no batch in flight'));
        return;
      }
      clearTimeout(head.timer);
      head.resolve(reply.acks ?? []);
      if (this.#waiting.length === 0) this.#drained?.();
    });
    call.on('error', (error: grpc.ServiceError) => this.#fail(call, error));
    call.on('end', () =>
      this.#fail(call, streamError(grpc.status.UNAVAILABLE, 'the sandbox ended the stream')),
    );
    this.#call = call;
    return call;
  }

  #fail(call: ActCall, error: grpc.ServiceError): void {
    if (this.#call !== call) return;
    this.#call = undefined;
    call.cancel();
    const waiting = this.#waiting.splice(0);
    for (const w of waiting) clearTimeout(w.timer);
    this.#drained?.();
    if (error.code === grpc.status.UNIMPLEMENTED) {
      // A sandbox with Act only: these batches, and every later one, go as unary calls.
      this.unary = true;
      for (const w of waiting) unaryAct(this.#raw, w.batch, w.deadline).then(w.resolve, w.reject);
      return;
    }
    for (const w of waiting) w.reject(error);
  }
}

function unaryAct(
  raw: SandboxClient['raw'],
  batch: Buffer,
  deadline: number,
): Promise<ActionAckWire[]> {
  return new Promise((resolve, reject) =>
    (
      raw.act as (
        req: unknown,
        opts: unknown,
        cb: (e: grpc.ServiceError | null, r: Acks) => void,
      ) => void
    )(batch, { deadline }, (error, reply) => (error ? reject(error) : resolve(reply.acks ?? []))),
  );
}

let encodedClient: grpc.ServiceClientConstructor | undefined;

/**
 * The contract's client, except that Act and ActStream send ActionBatch bytes as they are, and
 * Watch gives each EventBatch as its bytes (the receiver decodes them: actors/receiver/wire.ts).
 */
function encodedActionsClient(): grpc.ServiceClientConstructor {
  if (!encodedClient) {
    const service = sandboxPackage().Sandbox.service;
    const passBytes = (method: grpc.MethodDefinition<unknown, unknown>) => ({
      ...method,
      requestSerialize: (value: unknown) =>
        Buffer.isBuffer(value) ? value : method.requestSerialize(value),
    });
    encodedClient = grpc.makeGenericClientConstructor(
      {
        ...service,
        Act: passBytes(service.Act!),
        ActStream: passBytes(service.ActStream!),
        Watch: { ...service.Watch!, responseDeserialize: (bytes: Buffer) => bytes },
      },
      'Sandbox',
    );
  }
  return encodedClient;
}

/** A sandbox as the configuration gives it (config `sandboxes`). */
interface SandboxEntry {
  readonly address: string;
  readonly tls?: ClientTls | null;
  readonly maxMessageBytes?: number;
}

/**
 * What a sandbox's client is made for (its address, TLS and message size limit): a configuration
 * change to any of them needs a new client; one to its cap or deadline does not.
 */
export const endpointOf = (entry: SandboxEntry): string =>
  JSON.stringify([entry.address, entry.tls ?? null, entry.maxMessageBytes ?? MAX_MESSAGE_BYTES]);

/** The client for a configured sandbox (sandboxClient with the entry's settings). */
export const clientFor = (entry: SandboxEntry, policy: TransportPolicy): SandboxClient =>
  sandboxClient(entry.address, entry.tls ?? null, policy, entry.maxMessageBytes);

/** A client for one sandbox; plaintext off loopback is refused unless the policy allows it. */
export function sandboxClient(
  address: string,
  tls: ClientTls | null = null,
  policy: TransportPolicy = DEFAULT_TRANSPORT,
  maxMessageBytes = MAX_MESSAGE_BYTES,
): SandboxClient {
  const { credentials, options } = channelCredentials(address, tls, `sandbox ${address}`, policy);
  const raw = new (encodedActionsClient())(address, credentials, {
    ...channelOptions,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    ...options,
  }) as SandboxClient['raw'];
  const stream = new ActionStream(raw);
  return {
    raw,
    act: (actions, deadlineMs) => stream.act(actions, deadlineMs),
    get streaming() {
      return !stream.unary;
    },
    close: async (graceMs = 0) => {
      await stream.close(graceMs);
      raw.close();
    },
  };
}
