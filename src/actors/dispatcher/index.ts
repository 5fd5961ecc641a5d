// The dispatcher: sends every decided action to the sandbox it came from (property 19) with its
// context (20), in one batch per sandbox per turn (on its ActStream, or an Act call);
// confirmations and feedback go to the episodes actor (21). A failed batch is retried after
// dispatch.retryDelaysMs (1 s, 2 s, 4 s by default: at most 3 retries), then its actions are
// reported failed (23). Retried actions keep their id, so a sandbox applies each once. At stop, a
// batch waiting for its next attempt is not retried: it is reported failed before the dispatcher
// stops, while the episodes actor still takes the report.

import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { WardenConfig } from '../../config/schema.ts';
import type { ActionDecision } from '../../messages/action.ts';
import {
  ACTION_FAILURES,
  ACTION_FEEDBACK,
  type ActionFailed,
  type ActionFeedback,
} from '../../messages/feedback.ts';
import { type PackedActions, unpackActions } from '../../messages/packed-actions.ts';
import { type ActorContext, defineActor } from '../../runtime/actor.ts';
import { Repeats } from '../../runtime/repeats.ts';
import { parentFrom } from '../../runtime/tracing.ts';
import { settlesWithin } from '../../runtime/within.ts';
import { clientFor, endpointOf, type SandboxClient } from '../../sandbox/grpc.ts';
import type { FailureBatch, ResultBatch } from '../adapter/index.ts';

/** Decided actions from the adapter, packed (messages/packed-actions.ts). */
export type DispatcherMessage = PackedActions;

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    dispatcher: DispatcherMessage;
  }
}

interface State {
  readonly clients: Map<string, SandboxClient>;
  /** Each client's address and TLS, as made (a change makes a new client). */
  readonly endpoints: Map<string, string>;
  /** Sandboxes removed from the configuration while Warden runs (until added back). */
  readonly removed: Set<string>;
  /** Actions decided for a sandbox after it was removed: not delivered, not a failure. */
  toRemoved: number;
  readonly queues: Map<string, ActionDecision[]>;
  scheduled: boolean;
  sent: number;
  confirmed: number;
  retries: number;
  failed: number;
  inFlight: number;
  /** Set by stop: no more retries. */
  stopping: boolean;
  /** Batches being sent (stop waits for their reports) and the waits before their retries. */
  readonly sending: Set<Promise<void>>;
  readonly waits: Set<() => void>;
  /** Per sandbox: failed attempts and failed batches, logged once then at most every 10 s. */
  readonly repeats: Map<string, { readonly attempts: Repeats; readonly failed: Repeats }>;
}

function repeatsOf(state: State, sandbox: string) {
  const r = state.repeats.get(sandbox) ?? { attempts: new Repeats(), failed: new Repeats() };
  state.repeats.set(sandbox, r);
  return r;
}

async function send(
  state: State,
  ctx: ActorContext,
  sandbox: string,
  batch: ActionDecision[],
): Promise<void> {
  let client = state.clients.get(sandbox);
  const delays = ctx.config.dispatch.retryDelaysMs;
  let lastError = client
    ? ''
    : state.removed.has(sandbox)
      ? `sandbox "${sandbox}" removed from the configuration`
      : `no sandbox named "${sandbox}"`;
  state.inFlight += batch.length;
  // One span per episode stage in this batch (each stage has its own trace), retries as
  // span events.
  const byStage = new Map<string, ActionDecision[]>();
  for (const d of batch) {
    if (!d.trace) continue;
    const list = byStage.get(d.trace);
    if (list) list.push(d);
    else byStage.set(d.trace, [d]);
  }
  const spans = [...byStage].map(([trace, actions]) =>
    ctx.tracer.startSpan(
      'dispatch',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'warden.sandbox': sandbox,
          'warden.actions': actions.length,
          'warden.last_action': actions.at(-1)!.action,
          'warden.batch_size': batch.length,
        },
      },
      parentFrom(trace),
    ),
  );
  const endSpans = (ok: boolean, detail: string) => {
    for (const span of spans) {
      if (!span) continue;
      span.setStatus(
        ok ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: detail },
      );
      span.end();
    }
  };
  let attempts = 0;
  // Whether Warden stops: then no retry (before a wait, or when stop cut it short).
  const stopping = () => {
    if (state.stopping) lastError = `not retried, Warden stopping: ${lastError}`;
    return state.stopping;
  };
  try {
    for (let attempt = 0; client && attempt <= delays.length; attempt++) {
      if (attempt > 0) {
        if (stopping()) break;
        state.retries++;
        for (const span of spans)
          span?.addEvent('retry', {
            attempt,
            'error.message': lastError,
            delayMs: delays[attempt - 1],
          });
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            state.waits.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, delays[attempt - 1]);
          state.waits.add(wake);
        });
        if (stopping()) break;
        // The sandbox's address may have changed meanwhile (configure), or it was removed.
        client = state.clients.get(sandbox);
        if (!client) {
          lastError = `sandbox "${sandbox}" removed from the configuration`;
          break;
        }
      }
      attempts++;
      try {
        const deadlineMs =
          ctx.config.sandboxes.find((s) => s.name === sandbox)?.deadlineMs ??
          ctx.config.dispatch.deadlineMs;
        const acks = await client.act(batch, deadlineMs);
        const byId = new Map(acks.map((a) => [a.actionId, a]));
        const results: ActionFeedback[] = [];
        for (const d of batch) {
          const ack = byId.get(d.actionId);
          const feedback: ActionFeedback = {
            type: 'action-feedback',
            actionId: d.actionId,
            sandboxId: sandbox,
            episodeId: d.episodeId,
            stage: d.stage,
            action: d.action,
            confirmed: ack?.confirmed === true,
            applied: ack?.applied === true,
            stageEnded: ack?.stageEnded === true,
            detail: ack?.detail ?? 'no acknowledgement in the reply',
            timestamp: Date.now(),
          };
          if (feedback.confirmed) state.confirmed++;
          results.push(feedback);
        }
        const reply: ResultBatch = { type: 'action-results', items: ACTION_FEEDBACK.pack(results) };
        ctx.send('episodes', reply);
        state.sent += batch.length;
        endSpans(true, 'confirmed');
        return;
      } catch (error) {
        lastError = (error as Error).message;
        // A sandbox refusing actions fails every batch: 8,000 lines with stacks in 40 s before.
        const repeated = repeatsOf(state, sandbox).attempts.note(batch.length);
        if (repeated)
          ctx.log.warn(
            {
              sandbox,
              attempt: attempt + 1,
              err: error,
              failedAttempts: repeated.times, // since the last line
              actions: repeated.rows,
            },
            'Act failed',
          );
      }
    }
    endSpans(false, `failed after ${attempts} attempts: ${lastError}`);
    // Decisions on a sandbox's last events that come after it was removed have nowhere to go:
    // told to the episodes actor as failed, but no delivery failure (no alert, no error line).
    const removed = state.removed.has(sandbox) && !state.clients.has(sandbox);
    if (removed) state.toRemoved += batch.length;
    else state.failed += batch.length;
    const repeated = removed ? undefined : repeatsOf(state, sandbox).failed.note(batch.length);
    if (repeated)
      ctx.log.error(
        {
          sandbox,
          attempts,
          lastError,
          batches: repeated.times, // since the last line
          actions: repeated.rows,
        },
        'actions failed after every retry',
      );
    // One message for the batch: a burst of failed batches, one message per action, could fill
    // the episodes actor's mailbox.
    const failures: ActionFailed[] = batch.map((d) => ({
      type: 'action-failed',
      actionId: d.actionId,
      sandboxId: sandbox,
      episodeId: d.episodeId,
      attempts,
      lastError,
      timestamp: Date.now(),
    }));
    const failed: FailureBatch = { type: 'action-failures', items: ACTION_FAILURES.pack(failures) };
    ctx.send('episodes', failed);
  } finally {
    state.inFlight -= batch.length;
  }
}

/**
 * A client per configured sandbox: one for each added, a new one for an address or TLS changed;
 * the client of one removed or changed closes once its calls in flight are answered (up to a
 * deadline), and their retries go to the new client.
 */
function syncClients(state: State, config: WardenConfig, log?: ActorContext['log']): void {
  const wanted = new Map(config.sandboxes.map((s) => [s.name, s]));
  for (const [name, client] of state.clients) {
    const entry = wanted.get(name);
    if (entry && state.endpoints.get(name) === endpointOf(entry)) continue;
    if (!entry) state.removed.add(name);
    state.clients.delete(name);
    state.endpoints.delete(name);
    void client.close(config.dispatch.deadlineMs);
  }
  for (const [name, entry] of wanted) {
    state.removed.delete(name);
    if (state.clients.has(name)) continue;
    try {
      state.clients.set(name, clientFor(entry, config.security));
      state.endpoints.set(name, endpointOf(entry));
    } catch (error) {
      // (warden start checks new channels first.) Its actions fail as for an unknown sandbox.
      if (!log) throw error;
      log.error({ err: error, sandbox: name }, 'no client for this sandbox: its actions fail');
    }
  }
}

export default defineActor<DispatcherMessage, State>({
  name: 'dispatcher',
  init(ctx) {
    const state: State = {
      clients: new Map(),
      endpoints: new Map(),
      removed: new Set(),
      toRemoved: 0,
      queues: new Map(),
      scheduled: false,
      sent: 0,
      confirmed: 0,
      retries: 0,
      failed: 0,
      inFlight: 0,
      stopping: false,
      sending: new Set(),
      waits: new Set(),
      repeats: new Map(),
    };
    syncClients(state, ctx.config);
    return state;
  },
  configure(state, config, ctx) {
    syncClients(state, config, ctx.log);
    return state;
  },
  handle(state, message, ctx) {
    for (const d of unpackActions(message)) {
      const q = state.queues.get(d.sandboxId) ?? [];
      q.push(d);
      state.queues.set(d.sandboxId, q);
    }
    if (!state.scheduled) {
      // Everything that arrives in this turn goes out as one batch per sandbox.
      state.scheduled = true;
      setImmediate(() => {
        state.scheduled = false;
        for (const [sandbox, batch] of state.queues) {
          state.queues.delete(sandbox);
          if (batch.length === 0) continue;
          const sent = send(state, ctx, sandbox, batch);
          state.sending.add(sent);
          void sent.finally(() => state.sending.delete(sent));
        }
      });
    }
    return state;
  },
  stats: (s) => ({
    sent: s.sent,
    confirmed: s.confirmed,
    retries: s.retries,
    failed: s.failed,
    toRemoved: s.toRemoved,
    inFlight: s.inFlight,
  }),
  async stop(state, ctx) {
    // Batches waiting to be retried are reported failed now; batches in flight get their acks
    // before the channels close (up to one deadline), or are reported failed too.
    state.stopping = true;
    for (const wake of [...state.waits]) wake();
    await new Promise((r) => setImmediate(r)); // this turn's batches go out first
    const { deadlineMs } = ctx.config.dispatch;
    const until = performance.now() + deadlineMs;
    await Promise.all([...state.clients.values()].map((c) => c.close(deadlineMs)));
    // Their reports (the channels closed, every call has settled or soon does).
    await settlesWithin(Promise.all(state.sending), Math.max(100, until - performance.now()));
  },
});
