// Clients of Warden's own services (PatternQuery, Admin) as the CLI and detection systems use
// them: TLS from files when given (plaintext on loopback otherwise), a bearer token with each
// call, and a deadline per call.

import type * as grpc from '@grpc/grpc-js';
import { bearerMetadata } from '../security/auth.ts';
import {
  type ClientTls,
  channelCredentials,
  DEFAULT_TRANSPORT,
  type TransportPolicy,
} from '../security/tls.ts';

export interface ClientOptions {
  readonly deadlineMs?: number;
  readonly tls?: ClientTls | null;
  /** Bearer token; the CLI takes it from WARDEN_TOKEN. */
  readonly token?: string;
  readonly policy?: TransportPolicy;
}

type Untyped = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function serviceClient(
  ctor: grpc.ServiceClientConstructor,
  address: string,
  options: ClientOptions,
): { client: grpc.Client; call<T>(method: string, request: object): Promise<T> } {
  const { credentials, options: channel } = channelCredentials(
    address,
    options.tls ?? null,
    `service ${address}`,
    options.policy ?? DEFAULT_TRANSPORT,
  );
  const client = new ctor(address, credentials, channel) as Untyped;
  const metadata = bearerMetadata(options.token);
  const deadlineMs = options.deadlineMs ?? 10_000;
  return {
    client,
    call: <T>(method: string, request: object) =>
      new Promise<T>((resolve, reject) =>
        (
          client[method] as (
            req: object,
            md: grpc.Metadata,
            opts: grpc.CallOptions,
            cb: (e: grpc.ServiceError | null, r: T) => void,
          ) => void
        )(request, metadata, { deadline: Date.now() + deadlineMs }, (error, reply) =>
          error ? reject(error) : resolve(reply),
        ),
      ),
  };
}
