// Opens Warden's database: DATABASE_URL when set, else the embedded server; applies migrations.

import pg from 'pg';
import type { WardenConfig } from '../config/schema.ts';
import { ConfigError, DatabaseError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { settlesWithin } from '../runtime/within.ts';
import { type EmbeddedDatabase, startEmbedded } from './embedded.ts';
import { migrate } from './migrations.ts';

export interface Database {
  readonly pool: pg.Pool;
  readonly url: string;
  readonly embedded: EmbeddedDatabase | undefined;
  close(): Promise<void>;
}

export function createPool(url: string, log: Logger, max = 4): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // A refused connection fails at once; this bounds a handshake that does not finish. 2 s was
    // too short on a loaded machine: with both cores saturated, the DB writer's thread (at a
    // lower priority) could not finish one in time after an outage, so the journal was never
    // replayed and filled up (scratch run, 27 November: e2e at full speed, the database stopped
    // for 5 s; at 10 s the replay goes through).
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
    // A deadline on every statement: a stuck query fails (and rows queue) instead of hanging.
    statement_timeout: 60_000,
  });
  // Without a listener a dropped idle connection (server restart, outage) would crash the process.
  pool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'));
  // A server that goes away mid-query also errors the checked-out client: the query fails (and
  // the writer queues its rows); the event must not crash the thread.
  pool.on('connect', (client) =>
    client.on('error', (error) => log.warn({ err: error }, 'database connection lost')),
  );
  return pool;
}

/** Where a PostgreSQL URL points, without its credentials (host:port/database); undefined when
 * it is not a postgres:// URL. */
export function databaseShown(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return undefined;
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  return `${host}:${u.port || 5432}${u.pathname}`;
}

export async function openDatabase(config: WardenConfig, log: Logger): Promise<Database> {
  // pg reads any string as a connection string: "notaurl" became a lookup of host "base".
  const shown = config.database.url ? databaseShown(config.database.url) : 'the embedded server';
  if (!shown)
    throw new ConfigError(
      'DATABASE_URL is not a PostgreSQL URL: expected postgres://user:password@host:port/database (its value is not shown: it may hold a password)',
    );
  const embedded = config.database.url
    ? undefined
    : await startEmbedded(
        config.database.dataDir,
        log,
        undefined,
        config.database.embeddedSettings,
      );
  const url = config.database.url ?? embedded!.url;
  const pool = createPool(url, log);
  // pool.end() resolves once every connection was asked to close, before they have: an embedded
  // server stopped right then cuts them, and each logs 'connection lost'. close() waits for them.
  const open = new Set<pg.Client>();
  pool.on('connect', (c) => {
    open.add(c);
    c.once('end', () => open.delete(c));
  });
  try {
    const client = await pool.connect();
    try {
      const applied = await migrate(client, Number.POSITIVE_INFINITY, (m) =>
        log.info({ version: m.version, migration: m.name }, 'applying database migration'),
      );
      if (applied.length > 0) log.info({ applied }, 'database migrations applied');
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    await embedded?.stop();
    const source = config.database.url ? ' (DATABASE_URL)' : '';
    throw new DatabaseError(
      `cannot use PostgreSQL at ${shown}${source}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    pool,
    url,
    embedded,
    async close() {
      const closing = [...open].map((c) => new Promise((resolve) => c.once('end', resolve)));
      await pool.end();
      await settlesWithin(Promise.all(closing), 2_000);
      await embedded?.stop();
    },
  };
}
