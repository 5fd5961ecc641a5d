// The sandbox contract (proto/warden/sandbox/v1/sandbox.proto) loaded for grpc-js: the service
// definition for servers and a typed client for Warden's receiver and dispatcher.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  type ClientTls,
  channelCredentials,
  DEFAULT_TRANSPORT,
  type TransportPolicy,
} from '../security/tls.ts';

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

/** Message size limit on every sandbox channel (an EventBatch of 32 call-level events is ~20 KiB). */
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
  act(actions: ActionRequestWire[], deadlineMs: number): Promise<ActionAckWire[]>;
  close(): void;
}

/** A client for one sandbox; plaintext off loopback is refused unless the policy allows it. */
export function sandboxClient(
  address: string,
  tls: ClientTls | null = null,
  policy: TransportPolicy = DEFAULT_TRANSPORT,
): SandboxClient {
  const { credentials, options } = channelCredentials(address, tls, `sandbox ${address}`, policy);
  const raw = new (sandboxPackage().Sandbox)(address, credentials, {
    ...channelOptions,
    ...options,
  }) as SandboxClient['raw'];
  return {
    raw,
    act: (actions, deadlineMs) =>
      new Promise((resolve, reject) =>
        (
          raw.act as (
            req: unknown,
            opts: unknown,
            cb: (e: grpc.ServiceError | null, r: { acks?: ActionAckWire[] }) => void,
          ) => void
        )({ actions }, { deadline: Date.now() + deadlineMs }, (error, reply) =>
          error ? reject(error) : resolve(reply.acks ?? []),
        ),
      ),
    close: () => raw.close(),
  };
}
