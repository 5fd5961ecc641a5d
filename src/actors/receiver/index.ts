// A receiver (one per sandbox, "receiver:<name>"): subscribes to the sandbox's Watch stream,
// decodes and validates every event as untrusted input (wire.ts: defaults counted per field, a
// malformed event rejected on its own), and hands the batch to the adapter with its arrival time,
// its telemetry in columns (messages/packed-telemetry.ts).
// A cut stream is resubscribed with exponential backoff, telling the sandbox the last sequence
// number accepted per open stage (resume_after); what it sends again anyway is dropped and counted
// (ledger.ts). Backpressure: the events handed on and
// not yet finished by the adapter are counted in shared memory (runtime/shared/intake.ts); at
// telemetry.intakeWindow the receiver stops reading the stream until half are done, and the
// sandbox meets gRPC flow control (its writes wait) instead of Warden queueing without bound. The
// same holds every stream while the dispatcher, the episodes actor or the DB writer has half a
// mailbox of messages pending (runtime/shared/backlog.ts): a thread that falls behind slows the
// sandboxes down rather than dropping what they sent.
// A sandbox's maxEventsPerSecond caps what is read from it the same way (a token bucket: reading
// pauses until the events read are back under the rate), so one sandbox that streams without
// bound cannot take the machine from the others; the cap is live (a configuration change applies
// without a restart).

import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type {
  EpisodeLifecycle,
  EpisodeStarted,
  Label,
  StageFailed,
  StageOutcome,
} from '../../messages/index.ts';
import type { PackedTelemetry, SequencedLifecycle } from '../../messages/packed-telemetry.ts';
import { type ActorContext, assertNever, defineActor } from '../../runtime/actor.ts';
import {
  receiverFile,
  resumeDirOf,
  takeResumeFile,
  writeResumeFile,
} from '../../runtime/resume.ts';
import { IntakeCounts, MAX_SANDBOXES } from '../../runtime/shared/intake.ts';
import {
  clientFor,
  endpointOf,
  MAX_MESSAGE_BYTES,
  type SandboxClient,
} from '../../sandbox/grpc.ts';
import { DefaultsCounter } from '../../validation/defaults-counter.ts';
import { StreamLedger } from './ledger.ts';
import { decodeEventBatch } from './wire.ts';

export interface SandboxEventsBatch {
  readonly type: 'sandbox-events';
  readonly sandbox: string;
  /** performance.timeOrigin + performance.now() when the batch arrived (property 1). */
  readonly receivedAt: number;
  /** The batch's validated telemetry, in columns (messages/packed-telemetry.ts). */
  readonly telemetry: PackedTelemetry;
  /** Its lifecycle events, each placed among the telemetry by `at`. */
  readonly lifecycle: readonly SequencedLifecycle[];
}

export type ReceiverMessage = { readonly type: 'reconnect' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    [receiver: `receiver:${string}`]: ReceiverMessage;
  }
}

interface State {
  /**
   * The context in force: replaced on every configuration change (configure), and read by the
   * stream's callbacks, which outlive the context they were created in.
   */
  ctx: ActorContext;
  readonly sandbox: string;
  client: SandboxClient;
  /** The sandbox's address and TLS as the client was made for them (a change reconnects). */
  endpoint: string;
  /** The resubscription waiting out its backoff, if any. */
  reconnect: NodeJS.Timeout | undefined;
  readonly counter: DefaultsCounter;
  /** What was accepted per open stage: resume_after, and the events sent again (ledger.ts). */
  readonly ledger: StreamLedger;
  /** Stages named in the last resume_after. */
  resumed: number;
  readonly intake: IntakeCounts;
  readonly slot: number;
  call: grpc.ClientReadableStream<unknown> | undefined;
  /** When the stream was paused for backpressure (performance.now()), or undefined. */
  pausedAt: number | undefined;
  pauses: number;
  pausedMs: number;
  /** sandboxes[].maxEventsPerSecond (0 = no cap; live) and its token bucket. */
  rate: number;
  tokens: number;
  refilledAt: number;
  /** When reading was paused by the cap (performance.now()), or undefined; and the wait's end. */
  throttledAt: number | undefined;
  throttle: NodeJS.Timeout | undefined;
  throttles: number;
  throttledMs: number;
  /** The most events in flight to the adapter seen after a hand-off. */
  inFlightMax: number;
  /** Data-path actors this receiver has paused for (logged the first time each). */
  readonly heldFor: Set<string>;
  stopped: boolean;
  failures: number;
  batches: number;
  /** When the last batch arrived (ms since the epoch), 0 before the first. */
  lastBatchAt: number;
  /** Events accepted and handed on (not the rejected ones, nor those sent again). */
  events: number;
  rejected: number;
  reconnects: number;
  /** Streams that ended in an error (unreachable, refused, cut), not by the sandbox closing them. */
  lost: number;
  /** At most this many events per batch (WatchRequest.max_batch), halved at each batch too large. */
  batchCap: number;
  /** Streams ended by a batch over the sandbox's maxMessageBytes. */
  oversized: number;
}

type Wire = Record<string, unknown>;
const str = (v: unknown, d = '') => (typeof v === 'string' ? v : d);
const num = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const stageOf = (v: unknown) => (v === 2 ? 2 : 1) as 1 | 2;
const LABELS: Record<number, Label> = { 0: 'unknown', 1: 'malicious', 2: 'benign' };

function lifecycleEvent(kind: string, w: Wire, sandbox: string): EpisodeLifecycle | undefined {
  const base = {
    sandboxId: sandbox,
    episodeId: str(w.episodeId, 'unknown'),
    stage: stageOf(w.stage),
    timestamp: num(w.timestampMs, Date.now()),
  };
  if (kind === 'episodeStarted') {
    const e: EpisodeStarted = {
      type: 'episode-started',
      ...base,
      artifactHash: str(w.artifactHash),
      artifactType: 'other',
      cleaned: w.cleaned === true,
    };
    return e;
  }
  if (kind === 'stageOutcome') {
    const e: StageOutcome = {
      type: 'stage-outcome',
      ...base,
      eventsObserved: num(w.eventsObserved),
      sandboxDetected: w.sandboxDetected === true,
      cleaned: w.cleaned === true,
      cleaningSucceeded: w.cleaningSucceeded === true,
      groundTruth: LABELS[num(w.groundTruth)] ?? 'unknown',
      family: str(w.family) || null,
    };
    return e;
  }
  if (kind === 'stageFailed') {
    const reasons = ['sandbox-crash', 'stream-cut', 'timeout', 'refused', 'other'] as const;
    const reason = reasons.find((r) => r === w.reason) ?? 'other';
    const e: StageFailed = {
      type: 'stage-failed',
      ...base,
      reason,
      detail: str(w.detail).slice(0, 1024),
    };
    return e;
  }
  return undefined;
}

const STALLED_MS = 10_000;

/**
 * The actors after the adapter that every event's data passes through: one of them with half a
 * mailbox of messages pending (runtime/shared/backlog.ts) holds every receiver, so that a thread
 * that falls behind (starved of a core, a slow disk) slows the sandboxes down instead of its full
 * mailbox dropping decisions, feedback or trajectories. The learner is not among them: what it is
 * sent is a statistic, and learning waits for spare cycles by design.
 */
const DATA_PATH = ['dispatcher', 'episodes', 'db-writer'] as const;

/**
 * Whether this receiver has more than `share` of its window in flight: events (telemetry.intakeWindow)
 * or hand-offs (its share of the adapter's mailbox, which every receiver fills), or an actor on the
 * data path more than `share` of half its mailbox behind.
 */
function overWindow(state: State, share: number): boolean {
  const { telemetry, runtime, sandboxes } = state.ctx.config;
  const handoffs = Math.max(1, Math.floor(runtime.mailboxCapacity / (2 * sandboxes.length)));
  return (
    state.intake.inFlight(state.slot) >= telemetry.intakeWindow * share ||
    state.intake.handoffs(state.slot) >= handoffs * share ||
    behind(state, share) !== undefined
  );
}

/** The data-path actor more than `share` of half its mailbox behind, if any. */
function behind(state: State, share: number): string | undefined {
  return state.ctx.backlog?.over(DATA_PATH, (state.ctx.config.runtime.mailboxCapacity / 2) * share);
}

/** Backpressure: stops reading `call` until the adapter is down to half the window. */
function hold(state: State, call: grpc.ClientReadableStream<Buffer>): void {
  const { ctx } = state;
  call.pause();
  state.pausedAt = performance.now();
  const slow = behind(state, 1);
  if (slow !== undefined) {
    // Once per actor and stream, not per pause: a starved thread can hold the streams often.
    if (!state.heldFor.has(slow)) {
      state.heldFor.add(slow);
      ctx.log.warn(
        { sandbox: state.sandbox, actor: slow, pending: ctx.backlog?.pending(slow) },
        `${slow} is half a mailbox behind: reading paused until it catches up (counted as pauses)`,
      );
    }
  } else if (state.pauses === 0)
    ctx.log.info(
      { sandbox: state.sandbox, intakeWindow: ctx.config.telemetry.intakeWindow },
      'sandbox streams faster than its events are decided: reading paused until the adapter catches up (counted as pauses)',
    );
  state.pauses++;
  // The counts not moving for this long while paused: the events (or messages) were lost with a
  // worker thread (its mailbox), not being worked on; forgotten, or the stream would wait forever.
  const counts = () =>
    `${state.intake.inFlight(state.slot)}/${state.intake.handoffs(state.slot)}/${DATA_PATH.map((a) => ctx.backlog?.pending(a) ?? 0).join('/')}`;
  let last = counts();
  let lastChange = performance.now();
  const check = () => {
    if (state.call !== call || state.stopped) {
      release(state);
      return;
    }
    const now = performance.now();
    if (counts() !== last) {
      last = counts();
      lastChange = now;
    } else if (now - lastChange > STALLED_MS) {
      state.ctx.log.warn(
        { sandbox: state.sandbox, inFlight: state.intake.inFlight(state.slot) },
        `none of this sandbox's events in flight were finished for ${STALLED_MS / 1000} s: counted as lost with a restarted thread, reading again`,
      );
      state.intake.forget(state.slot);
      for (const a of DATA_PATH) state.ctx.backlog?.reset(a);
    }
    if (overWindow(state, 0.5)) {
      setTimeout(check, 1);
      return;
    }
    release(state);
    if (state.throttledAt === undefined) call.resume(); // else the cap's timer resumes it
  };
  setTimeout(check, 1);
}

function release(state: State): void {
  if (state.pausedAt === undefined) return;
  state.pausedMs += performance.now() - state.pausedAt;
  state.pausedAt = undefined;
}

/** Burst of the cap: a tenth of a second's events, at least one batch's worth. */
const burstOf = (rate: number) => Math.max(64, rate / 10);

/**
 * Takes the sandbox's cap from the configuration in force (configure calls it on every change);
 * a new cap starts with a full burst. Returns whether it changed.
 */
function applyRate(state: State): boolean {
  const { ctx } = state;
  const rate = ctx.config.sandboxes.find((s) => s.name === state.sandbox)?.maxEventsPerSecond ?? 0;
  if (rate === state.rate) return false;
  ctx.log.info(
    { sandbox: state.sandbox, maxEventsPerSecond: rate, before: state.rate },
    'sandbox cap changed',
  );
  state.rate = rate;
  state.tokens = burstOf(rate);
  state.refilledAt = performance.now();
  return true;
}

/**
 * The sandbox's maxEventsPerSecond: takes `events` from the token bucket; when it runs short,
 * stops reading `call` until the deficit has refilled at the rate.
 */
function pace(state: State, call: grpc.ClientReadableStream<Buffer>, events: number): void {
  const now = performance.now();
  state.tokens = Math.min(
    burstOf(state.rate),
    state.tokens + ((now - state.refilledAt) / 1000) * state.rate,
  );
  state.refilledAt = now;
  state.tokens -= events;
  if (state.tokens >= 0 || state.throttledAt !== undefined) return;
  call.pause();
  state.throttledAt = now;
  if (state.throttles++ === 0)
    state.ctx.log.info(
      { sandbox: state.sandbox, maxEventsPerSecond: state.rate },
      'sandbox streams above its maxEventsPerSecond: reading paced to the cap (counted as throttles)',
    );
  state.throttle = setTimeout(
    () => unthrottle(state),
    Math.ceil((-state.tokens / state.rate) * 1000),
  ).unref(); // a slow cap (seconds between batches) must not hold the thread at stop
}

/** Ends a pause of the cap: its wait is over, or the cap changed. */
function unthrottle(state: State): void {
  if (state.throttledAt === undefined) return;
  clearTimeout(state.throttle);
  state.throttledMs += performance.now() - state.throttledAt;
  state.throttledAt = undefined;
  // The stream now read (a reconnect may have replaced `call`), unless backpressure holds it:
  // then its check resumes it.
  if (!state.stopped && state.pausedAt === undefined) state.call?.resume();
}

/**
 * Ledgers of receivers stopped while their system runs (their sandbox removed from the
 * configuration), by sandbox name, per system (keyed by its intake buffer). A sandbox added back
 * takes its ledger up again, so its resubscribe names the stages open when it was removed and
 * they go on where they stood, instead of starting again (and the runs before ending as
 * partial). What is older than dispatch.episodeTimeoutMs is named no more (ledger.resumeAfter).
 */
const parkedLedgers = new WeakMap<SharedArrayBuffer, Map<string, StreamLedger>>();

function parkedFor(ctx: ActorContext): Map<string, StreamLedger> {
  const buffer = ctx.shared.intake;
  if (!buffer) return new Map();
  const parked = parkedLedgers.get(buffer) ?? new Map<string, StreamLedger>();
  parkedLedgers.set(buffer, parked);
  return parked;
}

/** Events per batch a receiver asks for at most (WatchRequest.max_batch). */
export const MAX_BATCH = 64;
/** Bytes an event takes in an EventBatch beyond its own (two tags and lengths). */
const EVENT_FRAMING_BYTES = 16;

/**
 * The max_batch a receiver asks for: as many events of telemetry.maxEventBytes as fit in the
 * sandbox's maxMessageBytes, at most MAX_BATCH, and at most the cap its oversized batches left.
 */
function maxBatchOf(state: State): number {
  const { config } = state.ctx;
  const entry = config.sandboxes.find((s) => s.name === state.sandbox);
  const fit = Math.floor(
    (entry?.maxMessageBytes ?? MAX_MESSAGE_BYTES) /
      (config.telemetry.maxEventBytes + EVENT_FRAMING_BYTES),
  );
  return Math.max(1, Math.min(MAX_BATCH, fit, state.batchCap));
}

/**
 * A batch over the channel's message limit ended the stream (gRPC RESOURCE_EXHAUSTED): the
 * receiver never saw its events, so the sandbox sends them again on the next subscribe, which asks
 * for half as many events per batch.
 */
function tooLarge(state: State, error: grpc.ServiceError): void {
  const asked = maxBatchOf(state);
  state.oversized++;
  state.batchCap = Math.max(1, Math.floor(asked / 2));
  const entry = state.ctx.config.sandboxes.find((s) => s.name === state.sandbox);
  state.ctx.log.error(
    {
      sandbox: state.sandbox,
      alert: 'warden_sandbox_batch_too_large',
      maxMessageBytes: entry?.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      maxBatch: asked,
      nextMaxBatch: state.batchCap,
      detail: error.details,
    },
    asked > 1
      ? 'a batch from the sandbox was over its maxMessageBytes and ended the stream: asking for fewer events per batch (raise sandboxes[].maxMessageBytes if its events are this large)'
      : 'a single event from the sandbox is over its maxMessageBytes, or the sandbox ignores max_batch: its stream cannot go on until sandboxes[].maxMessageBytes is raised',
  );
}

function subscribe(state: State): void {
  if (state.stopped) return;
  const { ctx } = state;
  const now = Date.now();
  const resumeAfter = state.ledger.resumeAfter(now, ctx.config.dispatch.episodeTimeoutMs);
  const started = state.ledger.started(now, ctx.config.dispatch.episodeTimeoutMs);
  state.resumed = Object.keys(resumeAfter).length + started.length;
  if (state.resumed > 0)
    ctx.log.info(
      { sandbox: state.sandbox, stages: Object.keys(resumeAfter).length, started: started.length },
      'resubscribing with the last event accepted per open stage (resume_after, started)',
    );
  const call = (state.client.raw.watch as (req: unknown) => grpc.ClientReadableStream<Buffer>)({
    receiverId: ctx.name,
    resumeAfter,
    started,
    maxBatch: maxBatchOf(state),
  });
  state.call = call as grpc.ClientReadableStream<unknown>;
  call.on('data', (bytes: Buffer) => {
    const receivedAt = performance.timeOrigin + performance.now();
    const { ctx } = state;
    const limits = ctx.config.telemetry;
    state.failures = 0;
    state.batches++;
    state.lastBatchAt = Date.now();
    const validation = {
      limits,
      counter: state.counter,
      absentIsDefault: true,
      now: Date.now(),
      sandboxId: state.sandbox,
    };
    const batch = decodeEventBatch(bytes, validation, (kind, wire) =>
      lifecycleEvent(kind, wire, state.sandbox),
    );
    if (batch.rejected.length > 0) {
      // One line per batch, not per event: a hostile sandbox cannot flood the log.
      state.rejected += batch.rejected.length;
      ctx.log.warn(
        { err: batch.rejected[0], rejected: batch.rejected.length, sandbox: state.sandbox },
        'sandbox events rejected (the first one shown; the rest of the batch went on)',
      );
    }
    // What the sandbox sent before (after a resubscribe) goes no further.
    const { telemetry, lifecycle } = state.ledger.accept(batch.telemetry, batch.lifecycle);
    const events = telemetry.count + lifecycle.length;
    if (events === 0) return;
    state.events += events;
    const message: SandboxEventsBatch = {
      type: 'sandbox-events',
      sandbox: state.sandbox,
      receivedAt,
      telemetry,
      lifecycle,
    };
    ctx.send('adapter', message);
    const inFlight = state.intake.add(state.slot, events);
    if (inFlight > state.inFlightMax) state.inFlightMax = inFlight;
    if (state.pausedAt === undefined && overWindow(state, 1)) hold(state, call);
    if (state.rate > 0) pace(state, call, events);
  });
  const retry = (why: string, lost: boolean) => {
    if (state.stopped || state.call !== call) return;
    state.call = undefined;
    state.failures++;
    state.reconnects++;
    if (lost) state.lost++;
    const { reconnectInitialMs, reconnectMaxMs } = state.ctx.config.dispatch;
    const delay = Math.min(
      reconnectMaxMs,
      reconnectInitialMs * 2 ** Math.min(20, state.failures - 1),
    );
    // A stream the sandbox closes cleanly (it restarts, or has nothing more) is no fault.
    if (lost)
      state.ctx.log.warn(
        { sandbox: state.sandbox, why, delayMs: delay },
        'sandbox stream lost; resubscribing',
      );
    else
      state.ctx.log.info(
        { sandbox: state.sandbox, delayMs: delay },
        'sandbox closed its stream; subscribing again',
      );
    state.reconnect = setTimeout(() => {
      state.reconnect = undefined;
      state.ctx.send(state.ctx.name as `receiver:${string}`, { type: 'reconnect' });
    }, delay).unref();
  };
  call.on('error', (error: grpc.ServiceError) => {
    if (error.code === status.RESOURCE_EXHAUSTED && state.call === call) tooLarge(state, error);
    retry(error.message, true);
  });
  call.on('end', () => retry('stream ended', false));
}

export default defineActor<ReceiverMessage, State>({
  name: 'receiver',
  init(ctx) {
    const sandbox = ctx.name.slice('receiver:'.length);
    const entry = ctx.config.sandboxes.find((s) => s.name === sandbox);
    if (!entry) throw new Error(`no sandbox named "${sandbox}" in the configuration`);
    const intake = new IntakeCounts(ctx.shared.intake);
    const slot = intake.claim(sandbox);
    if (slot < 0)
      ctx.log.warn(
        { sandbox, max: MAX_SANDBOXES },
        'more sandbox names than intake slots in this process: this one streams without the intake window (restart Warden to reclaim the slots of removed sandboxes)',
      );
    const parked = parkedFor(ctx);
    let ledger = parked.get(sandbox);
    parked.delete(sandbox);
    if (ledger)
      ctx.log.info(
        { sandbox, openStages: ledger.openStages },
        'sandbox added back: its stages go on where its removed receiver stood',
      );
    // What the last run had accepted, when it left its open stages (runtime/resume.ts).
    const dir = resumeDirOf(ctx.config);
    const left =
      dir === undefined
        ? undefined
        : takeResumeFile(dir, receiverFile(sandbox), ctx.log, ctx.config.security);
    if (!ledger && left !== undefined) {
      ledger = StreamLedger.restore(left, ctx.config.telemetry.maxOpenStages);
      ctx.log.info(
        { sandbox, openStages: ledger.openStages },
        'open stages of the last run: the sandbox is asked to go on with them',
      );
    }
    const state: State = {
      ctx,
      sandbox,
      client: clientFor(entry, ctx.config.security),
      endpoint: endpointOf(entry),
      reconnect: undefined,
      counter: new DefaultsCounter(),
      ledger: ledger ?? new StreamLedger(ctx.config.telemetry.maxOpenStages),
      resumed: 0,
      intake,
      slot,
      heldFor: new Set(),
      call: undefined,
      pausedAt: undefined,
      pauses: 0,
      pausedMs: 0,
      rate: entry.maxEventsPerSecond ?? 0,
      tokens: burstOf(entry.maxEventsPerSecond ?? 0),
      refilledAt: performance.now(),
      throttledAt: undefined,
      throttle: undefined,
      throttles: 0,
      throttledMs: 0,
      inFlightMax: 0,
      stopped: false,
      failures: 0,
      batches: 0,
      lastBatchAt: 0,
      events: 0,
      rejected: 0,
      reconnects: 0,
      lost: 0,
      batchCap: MAX_BATCH,
      oversized: 0,
    };
    subscribe(state);
    return state;
  },
  configure(state, _config, ctx) {
    state.ctx = ctx;
    // A new cap applies now, also to a stream its old cap paused (it reads no batch until then).
    if (applyRate(state)) unthrottle(state);
    // A new address, TLS or message limit: the stream moves to it now, resuming where this one stood (the
    // ledger stays: the sandbox behind the new address is asked to go on from there).
    const entry = ctx.config.sandboxes.find((s) => s.name === state.sandbox);
    if (entry && endpointOf(entry) !== state.endpoint && !state.stopped) {
      let client: SandboxClient;
      try {
        client = clientFor(entry, ctx.config.security);
      } catch (error) {
        // warden start checks a new channel before it gets here; whoever else configures, the
        // stream stays where it is rather than the receiver crashing on it.
        ctx.log.error(
          { err: error, sandbox: state.sandbox, address: entry.address },
          'sandbox address or TLS not applied; the stream stays where it was',
        );
        state.endpoint = endpointOf(entry); // said once, not at every configuration change
        return state;
      }
      const call = state.call;
      state.call = undefined; // its end is no loss to retry
      call?.cancel();
      clearTimeout(state.reconnect);
      state.reconnect = undefined;
      state.client.close();
      state.client = client;
      state.endpoint = endpointOf(entry);
      state.failures = 0;
      state.batchCap = MAX_BATCH; // a new limit: batches as large as it allows again
      ctx.log.info(
        {
          sandbox: state.sandbox,
          address: entry.address,
          tls: entry.tls !== undefined && entry.tls !== null,
        },
        'sandbox address, TLS or maxMessageBytes changed: subscribing there',
      );
      subscribe(state);
    }
    return state;
  },
  handle(state, message) {
    switch (message.type) {
      case 'reconnect':
        if (!state.call) subscribe(state);
        return state;
      default:
        return assertNever(message.type);
    }
  },
  stats: (s) => ({
    batches: s.batches,
    lastBatchAt: s.lastBatchAt,
    events: s.events,
    rejected: s.rejected,
    repeated: s.ledger.repeated,
    resumed: s.resumed,
    reconnects: s.reconnects,
    lost: s.lost,
    oversized: s.oversized,
    maxBatch: maxBatchOf(s),
    // backpressure (telemetry.intakeWindow)
    inFlight: s.intake.inFlight(s.slot),
    inFlightMax: s.inFlightMax,
    pauses: s.pauses,
    pausedMs: Math.round(
      s.pausedMs + (s.pausedAt === undefined ? 0 : performance.now() - s.pausedAt),
    ),
    // the sandbox's maxEventsPerSecond
    throttles: s.throttles,
    throttledMs: Math.round(
      s.throttledMs + (s.throttledAt === undefined ? 0 : performance.now() - s.throttledAt),
    ),
    defaultsApplied: s.counter.totalDefaults,
    // per field, for warden_telemetry_field_defaults{sandbox, field}
    ...Object.fromEntries(
      Object.entries(s.counter.defaults()).map(([field, n]) => [`default:${field}`, n]),
    ),
  }),
  stop(state) {
    state.stopped = true;
    // Kept for the sandbox being added back while this system runs (gone with the system), and
    // for the next run when Warden stops (runtime.resumeDir).
    parkedFor(state.ctx).set(state.sandbox, state.ledger);
    const dir = resumeDirOf(state.ctx.config);
    if (dir !== undefined) {
      try {
        writeResumeFile(
          dir,
          receiverFile(state.sandbox),
          state.ledger.snapshot(),
          state.ctx.config.security,
        );
      } catch (error) {
        state.ctx.log.error(
          { err: error, sandbox: state.sandbox, dir },
          'open stages not written (runtime.resumeDir): after a restart the sandbox starts them again',
        );
      }
    }
    clearTimeout(state.reconnect);
    clearTimeout(state.throttle);
    state.call?.cancel();
    state.client.close();
  },
});
