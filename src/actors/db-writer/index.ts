// The DB writer actor: receives patterns and trajectories, batches them into PostgreSQL through
// DbWriter (database.url — the embedded server's URL when Warden started one), queues them in the
// durable journal while the database is away, and retries it with backoff: 1 s after the rows
// began to queue, then 2 s, 4 s, … up to every database.retryMs (requirement 6.3's 30 s). A brief
// outage, or a connection that did not come within the pool's connect timeout on a loaded
// machine, then keeps rows out of the database for about a second, not for the full period.

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
  /** When the next journal replay is due (retryPlan). */
  readonly retry: { attempt: number; dueAt: number };
  readonly timers: {
    flush?: NodeJS.Timeout;
    retry?: NodeJS.Timeout;
    corroborate?: NodeJS.Timeout;
  };
}

/**
 * Starts a write of each full batch while a connection is free (each of what is buffered when
 * `all`), without waiting for one: the mailbox keeps being read. Rows past
 * database.maxBufferedRows go to the journal (the database is slower than they arrive); before,
 * the actor waited for a connection with the mailbox filling behind it, and a burst of 37k partial
 * episodes found it full and was dropped.
 */
function write(state: State, ctx: ActorContext, all: boolean): void {
  const { batchRows, maxBufferedRows } = ctx.config.database;
  while (
    state.writer.canSubmit &&
    (state.buffer.length >= fullBatch(ctx) || (all && state.buffer.length > 0))
  )
    void submit(state, ctx, state.buffer.splice(0, batchRows));
  // Reached only with every connection busy (a free one would have taken a full batch).
  if (state.buffer.length >= maxBufferedRows) {
    const batch = state.buffer.splice(0);
    traceWrite(batch, state.writer.spill(batch), Date.now(), ctx);
  }
  if (state.buffer.length > 0 && !state.timers.flush) {
    // Low traffic: a row waits at most 50 ms for company.
    state.timers.flush = setTimeout(() => {
      state.timers.flush = undefined;
      ctx.send('db-writer', { type: 'flush' });
    }, 50);
  }
}

/** Rows that make a batch worth writing at once (database.batchRows, or the buffer's bound if smaller). */
const fullBatch = (ctx: ActorContext): number =>
  Math.min(ctx.config.database.batchRows, ctx.config.database.maxBufferedRows);

/** Resolves once another batch may start (at most database.writeConnections in flight). */
function submit(state: State, ctx: ActorContext, batch: DbRecord[]): Promise<void> {
  const startTime = Date.now();
  return state.writer.submit(batch, (outcome) => {
    traceWrite(batch, outcome, startTime, ctx);
    // A connection is free again: full batches waiting for one go now.
    if (state.buffer.length >= fullBatch(ctx)) ctx.send('db-writer', { type: 'flush' });
  });
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

/** The first retry's delay once rows queue; each failed replay doubles it, up to retryMs. */
const FIRST_RETRY_MS = 1_000;

/** Delay before replay attempt `attempt` (0 = the first since rows began to queue). */
const retryDelay = (attempt: number, retryMs: number): number =>
  Math.min(retryMs, FIRST_RETRY_MS * 2 ** Math.min(attempt, 30));

/**
 * One tick of the retry schedule: nothing queued resets it; otherwise the journal is replayed once
 * due, and a replay that leaves rows queued (the database still away) doubles the wait.
 */
async function retryPlan(state: State, retryMs: number): Promise<void> {
  const { writer, retry } = state;
  if (writer.journalBytes === 0) {
    retry.attempt = 0;
    retry.dueAt = 0;
    return;
  }
  const now = Date.now();
  if (retry.dueAt === 0) retry.dueAt = now + retryDelay(0, retryMs); // rows just began to queue
  if (now < retry.dueAt) return;
  await writer.retry();
  if (writer.journalBytes === 0) return;
  retry.attempt++;
  retry.dueAt = Date.now() + retryDelay(retry.attempt, retryMs);
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
      writeTimeoutMs: ctx.config.database.writeTimeoutMs,
    });
    const state: State = {
      writer,
      pool,
      journal,
      buffer: [],
      retry: { attempt: 0, dueAt: 0 },
      timers: {},
    };
    // Rows queued by an earlier run (or before a crash) go in first.
    if (journal.hasPending) void writer.retry();
    const { retryMs } = ctx.config.database;
    let ticking = false; // a replay can outlast a tick
    state.timers.retry = setInterval(
      () => {
        if (ticking) return;
        ticking = true;
        retryPlan(state, ctx.config.database.retryMs)
          .catch((error: unknown) => ctx.log.error({ err: error }, 'replaying the journal failed'))
          .finally(() => {
            ticking = false;
          });
      },
      Math.min(retryMs, 250),
    );
    state.timers.retry.unref();
    state.timers.corroborate = setInterval(() => void writer.corroborate(), CORROBORATE_EVERY_MS);
    state.timers.corroborate.unref();
    return state;
  },
  handle(state, message, ctx) {
    switch (message.type) {
      case 'attack-pattern':
      case 'episode-trajectory':
      case 'experience-rows':
        state.buffer.push(message);
        write(state, ctx, false);
        return state;
      case 'flush':
        write(state, ctx, true);
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
    while (state.buffer.length > 0)
      await submit(state, ctx, state.buffer.splice(0, ctx.config.database.batchRows));
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
