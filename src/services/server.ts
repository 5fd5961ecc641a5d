// Warden's service port (database.queryPort on security.services.host): PatternQuery for detection
// systems and, when the caller runs a system, Admin for operators. One gRPC server with TLS or
// mutual TLS from security.services.tls and an authentication interceptor in front of every
// method (read for PatternQuery, operate for Admin). Plaintext is refused off loopback unless
// security.allowPlaintextRemote.

import * as grpc from '@grpc/grpc-js';
import type pg from 'pg';
import type { WardenConfig } from '../config/schema.ts';
import { InsecureChannelError, WardenError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { Authenticator, type DenyReason, parseTokens, TOKENS_ENV } from '../security/auth.ts';
import type { FieldCipher } from '../security/field-crypto.ts';
import { isLoopback, serverCredentials } from '../security/tls.ts';
import { ADMIN_METHODS, type AdminOperations, adminService } from './admin.ts';
import { PATTERN_METHODS, patternQueryService } from './pattern-query.ts';

export interface ServicesOptions {
  readonly db: pg.Pool;
  readonly log: Logger;
  readonly config: Pick<WardenConfig, 'security' | 'database'>;
  readonly admin?: AdminOperations;
  /** Decrypts encrypted pattern fields for authorised readers (and matches encrypted types). */
  readonly cipher?: FieldCipher;
  readonly env?: NodeJS.ProcessEnv;
  readonly onDenied?: (service: string, method: string, reason: DenyReason) => void;
}

export interface RunningServices {
  readonly port: number;
  readonly host: string;
  readonly tls: boolean;
  readonly authRequired: boolean;
  stop(): Promise<void>;
}

export async function startServices(o: ServicesOptions): Promise<RunningServices> {
  const { security } = o.config;
  const host = security.services.host;
  const port = o.config.database.queryPort;
  const tls = security.services.tls;
  if (!security.auth.required && !isLoopback(host)) {
    throw new InsecureChannelError(
      `security.auth.required is off: the services may only listen on loopback, not ${host}`,
    );
  }
  const credentials = serverCredentials(tls, host, 'services (security.services)', security);
  const auth = new Authenticator({
    required: security.auth.required,
    tokens: parseTokens((o.env ?? process.env)[TOKENS_ENV]),
    clientCertRoles: security.auth.clientCertRoles,
    certificatesVerified: tls?.requireClientCert === true,
    log: o.log,
    onDenied: o.onDenied,
  });
  if (!security.auth.required)
    o.log.warn(
      'security.auth.required is off (development): every local caller may query patterns and operate',
    );
  else if (!auth.hasCredentials)
    o.log.warn(
      `no ${TOKENS_ENV} and no verified client certificates: every PatternQuery and Admin call will be refused`,
    );
  if (security.auth.clientCertRoles.length > 0 && tls?.requireClientCert !== true)
    o.log.warn(
      'security.auth.clientCertRoles is ignored unless security.services.tls.requireClientCert verifies certificates',
    );
  const roles: Record<string, 'read' | 'operate'> = {};
  for (const path of Object.values(PATTERN_METHODS)) roles[path] = 'read';
  if (o.admin) for (const path of Object.values(ADMIN_METHODS)) roles[path] = 'operate';

  const server = new grpc.Server({
    'grpc.max_receive_message_length': 2 * 1024 * 1024,
    interceptors: [auth.interceptor(roles)],
  });
  const patterns = patternQueryService(o.db, o.log, o.cipher);
  server.addService(patterns.definition, patterns.implementation);
  if (o.admin) {
    const admin = adminService(o.admin, o.log);
    server.addService(admin.definition, admin.implementation);
  }
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, credentials, (error, p) =>
      error
        ? reject(
            new WardenError(
              `services cannot listen on ${host}:${port} (database.queryPort): ${/EADDRINUSE/.test(error.message) ? 'address in use' : error.message}`,
              { cause: error },
            ),
          )
        : resolve(p),
    ),
  );
  o.log.info({ port: bound, host, tls: tls !== null }, 'services listening');
  return {
    port: bound,
    host,
    tls: tls !== null,
    authRequired: security.auth.required,
    stop: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
