// Commands that talk to a running Warden's services (PatternQuery, Admin): `warden status`,
// `warden models deploy|rollback`, `warden config update`, and `warden tls dev-pki`. Every call
// carries the bearer token from WARDEN_TOKEN and uses TLS when --ca is given.

import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { createDevPki } from '../security/dev-pki.ts';
import { adminClient } from '../services/admin.ts';
import type { ClientOptions } from '../services/client.ts';

type Out = NodeJS.WritableStream;

export interface ServiceFlags {
  server?: string;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

export const TOKEN_ENV = 'WARDEN_TOKEN';

export function withServiceFlags(command: Command): Command {
  return command
    .option(
      '--server <host:port>',
      'Warden services (default: security.services.host:database.queryPort)',
    )
    .option('--ca <pem>', 'CA that verifies the server (turns TLS on)')
    .option('--cert <pem>', 'client certificate for mutual TLS')
    .option('--key <pem>', 'private key of --cert')
    .option('--server-name <name>', "name expected in the server's certificate");
}

export function serviceAddress(flags: ServiceFlags): string {
  if (flags.server) return flags.server;
  const { config } = loadConfig();
  const host = config.security.services.host;
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${reachable.includes(':') ? `[${reachable}]` : reachable}:${config.database.queryPort}`;
}

export function clientOptions(flags: ServiceFlags): ClientOptions {
  return {
    token: process.env[TOKEN_ENV] || undefined,
    tls: flags.ca
      ? {
          caFile: flags.ca,
          certFile: flags.cert ?? null,
          keyFile: flags.key ?? null,
          serverName: flags.serverName ?? null,
        }
      : null,
  };
}

/** One line for a failed call: the server's reason and the gRPC status name. */
export function callError(error: unknown, address?: string): string {
  const e = error as Partial<grpc.ServiceError> & Error;
  if (
    e.code === grpc.status.UNAVAILABLE &&
    address !== undefined &&
    /ECONNREFUSED|No connection/.test(e.details ?? e.message)
  )
    return `cannot reach Warden's services at ${address}: nothing listens there (is Warden running? --server host:port picks another) [UNAVAILABLE]`;
  if (typeof e.code === 'number') {
    const name = grpc.status[e.code] ?? String(e.code);
    const hint =
      e.code === grpc.status.UNAUTHENTICATED
        ? ` (set ${TOKEN_ENV}, or use a client certificate)`
        : '';
    return `${e.details || e.message} [${name}]${hint}`;
  }
  return e.message;
}

/**
 * Runs `run` with a client of the services (the bearer token and TLS from the flags): exit 0, or
 * an error whose message is one line with the server's reason; the client is closed either way.
 */
export async function withClient<C extends { close(): void }>(
  create: (address: string, options: ClientOptions) => C,
  flags: ServiceFlags,
  run: (client: C) => Promise<void>,
): Promise<number> {
  let client: C | undefined;
  let address: string | undefined;
  try {
    address = serviceAddress(flags);
    client = create(address, clientOptions(flags));
    await run(client);
    return 0;
  } catch (error) {
    // `warden` prints it as its one `warden: error:` line on stderr, exit 1.
    throw new Error(callError(error, address), { cause: error });
  } finally {
    client?.close();
  }
}

const withAdmin = (
  flags: ServiceFlags,
  run: (client: ReturnType<typeof adminClient>) => Promise<void>,
) => withClient(adminClient, flags, run);

export const statusCommand = (flags: ServiceFlags, out: Out) =>
  withAdmin(flags, async (c) => {
    const s = await c.status();
    out.write(
      `model ${s.modelVersion}  environment ${s.environment}  decisions ${s.decisions}  episodes ${s.episodesCompleted} (+${s.episodesPartial} partial)  up ${(s.uptimeMs / 1000).toFixed(0)} s\n`,
    );
    // A Warden from before checks were in the status sends none.
    const checks = s.checks ?? [];
    if (checks.length > 0) {
      const failing = checks.filter((c) => !c.ok);
      const said = (c: (typeof checks)[number]) =>
        c.detail.startsWith(c.name) ? c.detail : `${c.name} ${c.detail}`;
      out.write(
        failing.length === 0
          ? `ready: ${checks.map(said).join(', ')}\n`
          : `NOT READY: ${failing.map(said).join(', ')}\n`,
      );
    }
    const now = Date.now();
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    for (const b of s.sandboxes)
      out.write(
        `${[
          `sandbox ${b.name} (${b.address})`,
          b.lastBatchMs > 0 ? `last batch ${seconds(now - b.lastBatchMs)} ago` : 'no batch yet',
          `events ${b.events}`,
          `rejected ${b.rejected}`,
          ...(b.repeated > 0 ? [`sent again ${b.repeated}`] : []),
          `reconnects ${b.reconnects}${b.streamsLost > 0 ? ` (${b.streamsLost} lost)` : ''}`,
          `in flight ${b.inFlight}`,
          `paused ${seconds(b.pausedMs)}`,
          b.maxEventsPerSecond > 0
            ? `capped at ${b.maxEventsPerSecond}/s, throttled ${seconds(b.throttledMs)}`
            : 'no cap',
        ].join('  ')}\n`,
      );
  });

export const deployCommand = (version: string, flags: ServiceFlags, out: Out) =>
  withAdmin(flags, async (c) => {
    const r = await c.deploy(version);
    out.write(
      `serving ${r.servingVersion} (was ${r.previousVersion}); latest → ${r.servingVersion}\n`,
    );
  });

export const remoteRollbackCommand = (flags: ServiceFlags, out: Out) =>
  withAdmin(flags, async (c) => {
    const r = await c.rollback();
    out.write(`serving ${r.servingVersion} (rolled back from ${r.previousVersion})\n`);
  });

export const configUpdateCommand = (
  file: string,
  flags: ServiceFlags & { dryRun?: boolean },
  out: Out,
) =>
  withAdmin(flags, async (c) => {
    const document = readFileSync(file, 'utf8');
    const r = await c.updateConfig(document, flags.dryRun === true);
    const changed = r.changed.length > 0 ? r.changed.join(', ') : 'nothing';
    out.write(
      `${r.applied ? 'applied' : 'valid (dry run, nothing applied)'}; changes: ${changed}\n`,
    );
    if (r.restartRequired.length > 0)
      out.write(`takes effect after a restart: ${r.restartRequired.join(', ')}\n`);
  });

export async function devPkiCommand(
  dir: string,
  opts: { clients: string },
  out: Out,
): Promise<number> {
  const clients = opts.clients.split(',').filter(Boolean);
  const pki = await createDevPki(dir, clients);
  out.write(
    `wrote ${pki.caFile}, ${pki.server.certFile} (+key) and client certificates for ${clients.join(', ')} — for development only\n`,
  );
  return 0;
}
