// The Admin gRPC service (proto/warden/admin/v1/admin.proto): status, model deploy and rollback,
// configuration update. The operations themselves belong to whoever runs the system
// (`warden start` implements AdminOperations); this file maps them to gRPC and back. A refused
// operation (unknown version, invalid configuration) is FAILED_PRECONDITION or INVALID_ARGUMENT
// with the reason; anything else is INTERNAL, logged, and never crashes the server.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../runtime/logger.ts';
import { type ClientOptions, serviceClient } from './client.ts';

export const ADMIN_PROTO = new URL('../../proto/warden/admin/v1/admin.proto', import.meta.url)
  .pathname;

type LoadedAdmin = { warden: { admin: { v1: { Admin: grpc.ServiceClientConstructor } } } };

export const adminPackage = () =>
  (
    grpc.loadPackageDefinition(
      protoLoader.loadSync(ADMIN_PROTO, { longs: Number, defaults: true }),
    ) as unknown as LoadedAdmin
  ).warden.admin.v1;

export interface ModelSwitch {
  readonly servingVersion: string;
  readonly previousVersion: string;
}

export interface ConfigUpdate {
  readonly applied: boolean;
  readonly changed: readonly string[];
  readonly restartRequired: readonly string[];
}

export interface SandboxStatus {
  readonly name: string;
  readonly address: string;
  readonly events: number;
  readonly rejected: number;
  /** Events the sandbox sent again (receiver/ledger.ts), dropped. */
  readonly repeated: number;
  readonly reconnects: number;
  /** Streams that failed, not closed by the sandbox. */
  readonly streamsLost: number;
  readonly inFlight: number;
  readonly pausedMs: number;
  readonly throttledMs: number;
  readonly maxEventsPerSecond: number;
  /** When its last batch arrived (ms since the epoch), 0 before the first. */
  readonly lastBatchMs: number;
}

export interface AdminStatus {
  readonly modelVersion: string;
  readonly environment: string;
  readonly decisions: number;
  readonly episodesCompleted: number;
  readonly episodesPartial: number;
  readonly uptimeMs: number;
  readonly sandboxes: readonly SandboxStatus[];
  /** The /ready checks at this call (services/readiness.ts); none when the system has no probe. */
  readonly checks?: readonly {
    readonly name: string;
    readonly ok: boolean;
    readonly detail: string;
  }[];
}

export interface AdminOperations {
  status(): Promise<AdminStatus>;
  deploy(version: string): Promise<ModelSwitch>;
  rollback(): Promise<ModelSwitch>;
  updateConfig(document: string, dryRun: boolean): Promise<ConfigUpdate>;
}

/** An operation refused for a reason the caller can fix (sent back as-is). */
export class RefusedOperation extends Error {
  constructor(
    message: string,
    readonly code: grpc.status = grpc.status.FAILED_PRECONDITION,
  ) {
    super(message);
  }
}

export const ADMIN_METHODS = {
  status: '/warden.admin.v1.Admin/Status',
  deployModel: '/warden.admin.v1.Admin/DeployModel',
  rollbackModel: '/warden.admin.v1.Admin/RollbackModel',
  updateConfig: '/warden.admin.v1.Admin/UpdateConfig',
} as const;

function unary<Req, Res>(log: Logger, method: string, run: (req: Req) => Promise<Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    Promise.resolve(call.request)
      .then(run)
      .then((reply) => callback(null, reply))
      .catch((error: Error) => {
        const refused = error instanceof RefusedOperation;
        if (!refused) log.error({ err: error, method }, 'admin operation failed');
        else log.warn({ method, reason: error.message }, 'admin operation refused');
        callback({
          code: refused ? error.code : grpc.status.INTERNAL,
          details: refused ? error.message : `${method} failed: ${error.message}`,
        });
      });
  };
}

export function adminService(
  ops: AdminOperations,
  log: Logger,
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  return {
    definition: adminPackage().Admin.service,
    implementation: {
      status: unary(log, 'Status', () => ops.status()),
      deployModel: unary<{ version: string }, ModelSwitch>(log, 'DeployModel', (r) => {
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(r.version ?? ''))
          throw new RefusedOperation(
            'version must be 1–64 of [A-Za-z0-9_.-]',
            grpc.status.INVALID_ARGUMENT,
          );
        return ops.deploy(r.version);
      }),
      rollbackModel: unary(log, 'RollbackModel', () => ops.rollback()),
      updateConfig: unary<{ document: string; dryRun: boolean }, ConfigUpdate>(
        log,
        'UpdateConfig',
        (r) => {
          if (!r.document || r.document.length > 1_000_000)
            throw new RefusedOperation(
              'document must be 1 B – 1 MB of JSON',
              grpc.status.INVALID_ARGUMENT,
            );
          return ops.updateConfig(r.document, r.dryRun);
        },
      ),
    },
  };
}

export interface AdminClient {
  status(): Promise<AdminStatus>;
  deploy(version: string): Promise<ModelSwitch>;
  rollback(): Promise<ModelSwitch>;
  updateConfig(document: string, dryRun?: boolean): Promise<ConfigUpdate>;
  close(): void;
}

export function adminClient(address: string, options: ClientOptions = {}): AdminClient {
  const { client, call } = serviceClient(adminPackage().Admin, address, options);
  return {
    status: () => call('status', {}),
    deploy: (version) => call('deployModel', { version }),
    rollback: () => call('rollbackModel', {}),
    updateConfig: (document, dryRun = false) => call('updateConfig', { document, dryRun }),
    close: () => client.close(),
  };
}
