// The DB writer actor: receives patterns and trajectories, batches them into PostgreSQL through
// DbWriter (database.url — the embedded server's URL when Warden started one), queues them in the
// durable journal while the database is away, and retries every database.retryMs.

import { SpanKind } from '@opentelemetry/api';
import type pg from 'pg';
import { createPool } from '../../db/connect.ts';
import { Journal } from '../../db/journal.ts';
import { makeSanitizer } from '../../db/sanitize.ts';
import type { ExperienceRows } from '../../messages/experience.ts';
import type { AttackPattern } from '../../messages/pattern.ts';
import type { EpisodeTrajectory } from '../../messages/trajectory.ts';
import { type ActorContext, assertNever, defineActor } from '../../runtime/actor.ts';
import { parentFrom } from '../../runtime/tracing.ts';
import { settlesWithin } from '../../runtime/within.ts';
import { FieldCipher, KEYS_ENV } from '../../security/field-crypto.ts';
import { CORROBORATE_EVERY_MS, type DbRecord, DbWriter } from './writer.ts';

export type DbWriterMessage =
  | AttackPattern
  | EpisodeTrajectory
  | ExperienceRows
  | { readonly type: 'flush' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    'db-writer': DbWriterMessage;
  }
}

interface State {
  readonly writer: DbWriter;
  readonly pool: pg.Pool;
  readonly journal: Journal<DbRecord>;
  readonly buffer: DbRecord[];
  readonly timers: {
    flush?: NodeJS.Timeout;
    retry?: NodeJS.Timeout;
    corroborate?: NodeJS.Timeout;
  };
}

async function flush(state: State, ctx: ActorContext): Promise<void> {
  if (state.buffer.length === 0) return;
  const batch = state.buffer.splice(0);
  const startTime = Date.now();
  // Resolves once another batch may start (database.writeConnections in flight); the spans are
  // ended when this batch is done.
  await state.writer.submit(batch, (outcome) => traceWrite(batch, outcome, startTime, ctx));
}

/** The trajectory's write joins its episode's trace (tracing on). */
function traceWrite(
  batch: readonly DbRecord[],
  outcome: string,
  startTime: number,
  ctx: ActorContext,
): void {
  for (const r of batch) {
    if (r.type !== 'episode-trajectory' || !r.trace) continue;
    ctx.tracer
      .startSpan(
        'db.write',
        {
          kind: SpanKind.CLIENT,
          startTime,
          attributes: {
            'db.system': 'postgresql',
            'warden.outcome': outcome,
            'warden.transitions': r.steps.length,
            'warden.batch_rows': batch.length,
          },
        },
        parentFrom(r.trace),
      )
      .end();
  }
}

export default defineActor<DbWriterMessage, State>({
  name: 'db-writer',
  init(ctx) {
    const url = ctx.config.database.url;
    if (!url)
      throw new Error(
        'db-writer needs database.url (set by `warden start` for the embedded server, or DATABASE_URL)',
      );
    // A missing or wrong key is a configuration error before anything is opened.
    const { encryption } = ctx.config.security;
    const cipher = new FieldCipher(encryption.fields, process.env[KEYS_ENV], encryption.keyId);
    const pool = createPool(url, ctx.log, ctx.config.database.writeConnections + 2);
    const journal = new Journal<DbRecord>(
      ctx.config.database.journalDir,
      ctx.config.database.journalMaxBytes,
    );
    const sanitize = makeSanitizer({
      paths: ctx.config.database.sanitizePaths,
      ips: ctx.config.database.sanitizeIps,
      ...(process.env.WARDEN_SANITIZER_KEY ? { key: process.env.WARDEN_SANITIZER_KEY } : {}),
    });
    const writer = new DbWriter(pool, journal, ctx.log, {
      batchRows: ctx.config.database.batchRows,
      sanitize,
      cipher,
      connections: ctx.config.database.writeConnections,
    });
    const state: State = { writer, pool, journal, buffer: [], timers: {} };
    // Rows queued by an earlier run (or before a crash) go in first.
    if (journal.hasPending) void writer.retry();
    state.timers.retry = setInterval(() => void writer.retry(), ctx.config.database.retryMs);
    state.timers.retry.unref();
    state.timers.corroborate = setInterval(() => void writer.corroborate(), CORROBORATE_EVERY_MS);
    state.timers.corroborate.unref();
    return state;
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case 'attack-pattern':
      case 'episode-trajectory':
      case 'experience-rows':
        state.buffer.push(message);
        if (state.buffer.length >= ctx.config.database.batchRows) await flush(state, ctx);
        else if (!state.timers.flush) {
          // Low traffic: a row waits at most 50 ms for company.
          state.timers.flush = setTimeout(() => {
            state.timers.flush = undefined;
            ctx.send('db-writer', { type: 'flush' });
          }, 50);
        }
        return state;
      case 'flush':
        await flush(state, ctx);
        return state;
      default:
        return assertNever(message);
    }
  },
  stats(state) {
    const s = state.writer.stats;
    return {
      ...s,
      journalBytes: state.writer.journalBytes,
      buffered: state.buffer.length,
      corroborationBacklog: state.writer.corroborationBacklog,
    };
  },
  async stop(state, ctx) {
    clearTimeout(state.timers.flush);
    clearInterval(state.timers.retry);
    clearInterval(state.timers.corroborate);
    await flush(state, ctx);
    // Half the shutdown time for the writes in flight; what is still running then goes to the
    // journal (written at the next start), so the thread can end without losing a row.
    const budget = ctx.config.runtime.shutdownTimeoutMs / 2;
    const journaled = await state.writer.settle(budget);
    if (journaled > 0)
      ctx.log.warn(
        { rows: journaled, budgetMs: budget },
        'writes still running at stop: their rows are in the local journal for the next start',
      );
    state.journal.close();
    // A connection stuck in a write must not hold the stop past its time.
    await settlesWithin(state.pool.end(), budget / 2);
  },
});
