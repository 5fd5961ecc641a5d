// Model distribution through PostgreSQL (issue 8, requirement 7.3, property 31): the learner
// publishes each validated version (ONNX bytes, metadata, sha256, signature) to model_registry
// and announces it with NOTIFY; every inference host LISTENs, fetches, checks the checksum and
// hands the version to its inference pool (which verifies the signature when required). A host
// that was down catches up at start with the latest published version.

import { readFileSync } from 'node:fs';
import pg from 'pg';
import { inTransaction } from '../db/transaction.ts';
import type { ModelMetadata } from '../messages/model.ts';
import { modelFile, readMetadata, sha256, storeReceivedModel } from '../models/store.ts';
import { InvalidModelError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';

export const MODELS_CHANNEL = 'warden_models';

/** Publishes `version` of a models directory and announces it; publishing twice is a no-op. */
export async function publishModel(db: pg.Pool, dir: string, version: string): Promise<void> {
  const metadata = readMetadata(dir, version);
  const bytes = readFileSync(modelFile(dir, version));
  if (sha256(bytes) !== metadata.sha256)
    throw new InvalidModelError(`${version}: file does not match its sha256; not published`);
  await inTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO model_registry (version, created_at, metadata, sha256, onnx, signature)
         VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6) ON CONFLICT (version) DO NOTHING`,
      [
        version,
        metadata.timestamp,
        JSON.stringify(metadata),
        metadata.sha256,
        bytes,
        metadata.signature,
      ],
    );
    // Delivered when the transaction commits, so listeners always find the row.
    await client.query('SELECT pg_notify($1, $2)', [MODELS_CHANNEL, version]);
  });
}

/** The newest published version, if any. */
export async function latestPublished(db: pg.Pool): Promise<string | undefined> {
  const { rows } = await db.query<{ version: string }>(
    `SELECT version FROM model_registry WHERE onnx IS NOT NULL
      ORDER BY created_at DESC, version DESC LIMIT 1`,
  );
  return rows[0]?.version;
}

/** Copies a published version into `dir` after checking its bytes against the checksum. */
export async function fetchModel(
  db: pg.Pool,
  dir: string,
  version: string,
): Promise<ModelMetadata> {
  const { rows } = await db.query<{ metadata: ModelMetadata; onnx: Buffer; sha256: string }>(
    'SELECT metadata, onnx, sha256 FROM model_registry WHERE version = $1 AND onnx IS NOT NULL',
    [version],
  );
  const row = rows[0];
  if (!row) throw new InvalidModelError(`${version} is not in the model registry`);
  const digest = sha256(row.onnx);
  if (digest !== row.sha256 || digest !== row.metadata.sha256)
    throw new InvalidModelError(`${version}: registry bytes do not match their sha256; refused`);
  storeReceivedModel(dir, row.metadata, row.onnx);
  return row.metadata;
}

/**
 * LISTENs on a dedicated connection and calls `onVersion` for each announcement; reconnects with
 * backoff (calling `onReconnect`, so the caller can catch up on what it missed).
 */
export function listenForModels(
  url: string,
  log: Logger,
  onVersion: (version: string) => void,
  onReconnect: () => void,
): { close(): Promise<void> } {
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 200;
  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    c.on('notification', (n) => {
      if (n.channel === MODELS_CHANNEL && n.payload) onVersion(n.payload);
    });
    c.on('error', (error) => {
      log.warn({ err: error }, 'model announcements: connection lost; reconnecting');
      void c.end().catch(() => undefined);
      retry();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${MODELS_CHANNEL}`);
      delay = 200;
      onReconnect();
    } catch (error) {
      log.warn({ err: error }, 'model announcements: cannot listen yet; retrying');
      void c.end().catch(() => undefined);
      retry();
    }
  };
  let pending: NodeJS.Timeout | undefined;
  const retry = () => {
    if (closed || pending) return;
    const wait = delay;
    delay = Math.min(delay * 2, 10_000);
    pending = setTimeout(() => {
      pending = undefined;
      void connect();
    }, wait);
    pending.unref();
  };
  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(pending);
      await client?.end().catch(() => undefined);
    },
  };
}

/** What every host serves, for `warden status` and the convergence check. */
export async function reportServing(
  db: pg.Pool,
  hostId: string,
  role: string,
  version: string,
): Promise<void> {
  await db.query(
    `INSERT INTO host_status (host_id, role, model_version, updated_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (host_id) DO UPDATE SET role = $2, model_version = $3, updated_at = now()`,
    [hostId, role, version],
  );
}
