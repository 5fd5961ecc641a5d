// The adapter actor: telemetry → state vectors (state-vector.ts) per (episode, stage) → the
// inference pool (it owns it: it writes the request rings and drains the answers) → decisions,
// each with its context, to the dispatcher and the episodes actor. A stage is decided once: after
// a stage-ending decision its later events are ignored. Lifecycle events pass to the episodes actor.
// A stage ends when its outcome (or failure) arrives: decisions still in the pool for it then come
// back too late for the sandbox and are dropped, counted as droppedStageOver.

import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import type {
  ActionContext,
  ActionDecision,
  ActionId,
  FeatureWeight,
} from '../../messages/action.ts';
import { STAGE_ENDING_ACTIONS } from '../../messages/action.ts';
import type { EpisodeLifecycle } from '../../messages/episode.ts';
import type { ActionFailed, ActionFeedback } from '../../messages/feedback.ts';
import type { ModelActivated, ModelPublished, ModelRefused } from '../../messages/model.ts';
import { ActionPacker } from '../../messages/packed-actions.ts';
import { type PackedRecords, RecordCodec } from '../../messages/packed-records.ts';
import {
  apiNameAt,
  COLUMNS,
  episodeIdAt,
  seqAt,
  stageAt,
} from '../../messages/packed-telemetry.ts';
import { type ActorContext, assertNever, defineActor, SYSTEM } from '../../runtime/actor.ts';
import { FairQueue } from '../../runtime/fair-queue.ts';
import { OldestFirstMap } from '../../runtime/oldest-first-map.ts';
import {
  ADAPTER_FILE,
  resumeDirOf,
  takeResumeFile,
  writeResumeFile,
} from '../../runtime/resume.ts';
import { IntakeCounts } from '../../runtime/shared/intake.ts';
import { NOOP_TRACER, type Span, traceparentOf } from '../../runtime/tracing.ts';
import { InferencePool, type PoolDecision } from '../inference/pool.ts';
import type { SandboxEventsBatch } from '../receiver/index.ts';
import { featureNames, MAX_ISOLATION, StateAccumulator } from './state-vector.ts';

export type AdapterMessage =
  | SandboxEventsBatch
  | ModelPublished
  | { readonly type: 'pump' }
  | { readonly type: 'rollback' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    adapter: AdapterMessage;
  }
}

interface StageState {
  readonly acc: StateAccumulator;
  readonly cleaned: boolean;
  isolation: number;
  nextSeq: number;
  decided: boolean;
  /** Telemetry events seen (telemetry.maxEventsPerStage). */
  events: number;
}

export interface Pending {
  readonly sandbox: string;
  /** The sandbox's slot in the intake counts (runtime/shared/intake.ts). */
  readonly slot: number;
  readonly episodeId: string;
  readonly stage: 1 | 2;
  readonly seq: number;
  readonly state: Float32Array;
  readonly receivedAt: number;
  /** When it went to the inference pool (performance.now()); 0 while in the backlog. */
  submittedAt: number;
}

/**
 * Decisions for the episodes actor leave the adapter in batches, one message per drain of the pool
 * (the hot path): what it keeps of each decision, packed (messages/packed-records.ts), and their
 * state vectors in one Float32Array (item i's at [i·dim, (i+1)·dim)). The dispatcher gets the
 * full context, packed too (messages/packed-actions.ts). Measured with structuredClone at 256
 * decisions: 6.5 µs per decision as whole decisions with number[] states, 1.3 µs with summary
 * objects and one Float32Array.
 */
export interface DecisionBatch {
  readonly type: 'decisions';
  readonly items: PackedRecords<DecisionSummary>;
  readonly states: Float32Array;
}

/** The sandboxes' feedback on a batch of actions, packed. */
export interface ResultBatch {
  readonly type: 'action-results';
  readonly items: PackedRecords<ActionFeedback>;
}

/** A batch of actions the dispatcher gave up on after every retry, packed. */
export interface FailureBatch {
  readonly type: 'action-failures';
  readonly items: PackedRecords<ActionFailed>;
}

export interface DecisionSummary {
  readonly episodeId: string;
  readonly stage: 1 | 2;
  readonly seq: number;
  readonly action: ActionId;
  readonly confidence: number;
  readonly modelVersion: string;
  readonly source: ActionContext['source'];
  /** When the adapter decided (epoch ms). */
  readonly decidedAt: number;
  /** ms from the batch's arrival at the receiver to the decision (property 1 and latency). */
  readonly latencyMs: number;
}

export const DECISION_SUMMARIES = new RecordCodec<DecisionSummary>([
  ['episodeId', 'string'],
  ['stage', 'number'],
  ['seq', 'number'],
  ['action', 'number'],
  ['confidence', 'number'],
  ['modelVersion', 'string'],
  ['source', 'string'],
  ['decidedAt', 'number'],
  ['latencyMs', 'number'],
]);

/** Decisions of one stage waiting for their decide span (at most DECIDE_WINDOW_MS apart). */
interface Drained {
  readonly stage: Span;
  n: number;
  since: number;
}

/** Decisions of a stage within this window share one decide span (fewer spans, same story). */
const DECIDE_WINDOW_MS = 50;

function emitDecide(ctx: ActorContext, d: Drained): void {
  ctx.tracer
    .startSpan(
      'decide',
      { startTime: d.since, attributes: { 'warden.decisions': d.n } },
      trace.setSpan(ROOT_CONTEXT, d.stage),
    )
    .end();
}

/** An episode's open spans (tracing on): the episode and its current stages. */
interface EpisodeSpans {
  readonly episode: Span;
  readonly stages: Map<number, { span: Span; traceparent: string | undefined }>;
  /** Stages whose outcome came: in a positive/negative pair, stage 2's may come first. */
  readonly outcomes: Set<number>;
}

interface State {
  readonly pool: InferencePool;
  /** Events in flight from each receiver: taken off here as each one is done (backpressure). */
  readonly intake: IntakeCounts;
  /** Whether spans are recorded (the tracer is not the no-op one). */
  readonly tracing: boolean;
  readonly spans: OldestFirstMap<string, EpisodeSpans>;
  /** Per stage key: decisions not yet in a decide span, and the earliest arrival among them. */
  readonly drained: Map<string, Drained>;
  readonly stages: OldestFirstMap<string, StageState>;
  readonly pending: Map<number, Pending>;
  /** Events waiting for the pool, served round robin by sandbox, then by (episode, stage). */
  readonly backlog: FairQueue<Pending>;
  readonly names: string[];
  pumping: boolean;
  /** Decisions for the dispatcher, packed (messages/packed-actions.ts). */
  readonly outActions: ActionPacker;
  readonly outDecisions: DecisionSummary[];
  readonly outStates: Float32Array[];
  nextId: number;
  decisions: number;
  /** Decisions for events that came after their stage's verdict. */
  ignored: number;
  /**
   * Decisions that came back after their stage was over (its outcome or failure arrived, or it
   * was evicted): the sandbox has ended the stage, so they are neither dispatched nor recorded.
   */
  stageOver: number;
  /** Recent receiver → adapter hand-off times in ms (a ring of 4096), for property 1. */
  readonly handoffs: Float64Array;
  /** When each of those batches was taken (performance.now()). */
  readonly handoffAt: Float64Array;
  handoffNext: number;
  /** Events past telemetry.maxEventsPerStage (not decided). */
  overLimit: number;
  /** Stages dropped to stay within telemetry.maxOpenStages. */
  evicted: number;
  /** Requests decided again: their inference worker died before answering (requeueLost). */
  resubmitted: number;
  /**
   * Model switches (hot reloads, rollbacks) in order, off the mailbox: loading a model means an
   * ONNX Runtime session in every inference worker, and telemetry waited behind it (property 1).
   */
  switching: Promise<void>;
}

const key = (episodeId: string, stage: number) => `${episodeId}/${stage}`;

/** Queues a model switch after the ones before it; the mailbox goes on meanwhile. */
function switchModel(state: State, ctx: ActorContext, run: () => Promise<void>): void {
  state.switching = state.switching
    .then(run)
    .catch((error: unknown) => ctx.log.error({ err: error }, 'model switch failed'));
}

/**
 * Resolves once every request submitted so far has been answered and drained, or after `maxMs`.
 * A batch a worker took before a model switch is answered by the old model; waiting for it before
 * announcing the switch means no decision stamped after the announcement comes from an older
 * model (a fleet test saw one on a loaded machine). Request ids rise in the map's order.
 */
async function oldAnswersDrained(state: State, maxMs = 1_000): Promise<void> {
  const before = state.nextId;
  const deadline = performance.now() + maxMs;
  for (;;) {
    const oldest: number | undefined = state.pending.keys().next().value;
    if (oldest === undefined || oldest >= before || performance.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A published model loaded into the pool (the old one serves until the switch), then announced. */
async function hotReload(state: State, ctx: ActorContext, version: string): Promise<void> {
  const previous = state.pool.activeVersion;
  if (await state.pool.activate(ctx.config.models.dir, version)) {
    await oldAnswersDrained(state);
    const activated: ModelActivated = {
      type: 'model-activated',
      version: state.pool.activeVersion,
      previousVersion: previous,
      reason: 'hot-reload',
    };
    ctx.send(SYSTEM, activated);
  } else {
    const refused: ModelRefused = {
      type: 'model-refused',
      version,
      reason: state.pool.alerts.at(-1)?.message ?? 'refused',
    };
    ctx.send(SYSTEM, refused);
  }
}

/** Hand-offs of the last HANDOFF_WINDOW_MS (at most the ring's 4096): what property 1 is judged on now. */
const HANDOFF_WINDOW_MS = 5_000;
function recentHandoffs(s: State): Float64Array {
  const since = performance.now() - HANDOFF_WINDOW_MS;
  const out: number[] = [];
  for (let i = 0; i < Math.min(4096, s.handoffNext); i++)
    if (s.handoffAt[i]! >= since) out.push(s.handoffs[i]!);
  return Float64Array.from(out);
}

const percentile = (xs: Float64Array, p: number) => {
  if (xs.length === 0) return 0;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
};

function topFeatures(state: Float32Array, names: readonly string[], n = 3): FeatureWeight[] {
  // The most active features of the state (the vector the network weighed): a readable rationale.
  // n passes of a max search: no sort and no allocation per feature (this runs per decision).
  const out: FeatureWeight[] = [];
  let below = Number.POSITIVE_INFINITY;
  let belowIndex = -1;
  for (let k = 0; k < n; k++) {
    let best = -1;
    let bestValue = 0;
    for (let i = 0; i < state.length; i++) {
      const v = state[i]!;
      if (v > bestValue && (v < below || (v === below && i > belowIndex))) {
        best = i;
        bestValue = v;
      }
    }
    if (best < 0) break;
    out.push({ index: best, name: names[best] ?? `f${best}`, value: bestValue, weight: bestValue });
    below = bestValue;
    belowIndex = best;
  }
  return out;
}

/** Tracks a new stage; the oldest tracked one goes (counted) beyond telemetry.maxOpenStages. */
function openStage(state: State, ctx: ActorContext, k: string, cleaned: boolean): StageState {
  const { stateDim, horizon, maxOpenStages } = ctx.config.telemetry;
  while (state.stages.size >= maxOpenStages) {
    state.stages.shift();
    if (state.evicted++ === 0)
      ctx.log.warn(
        { maxOpenStages },
        'too many open episode stages: the oldest are dropped (counted as evictedStages)',
      );
  }
  const s: StageState = {
    acc: new StateAccumulator(stateDim, horizon),
    cleaned,
    isolation: 0,
    nextSeq: 0,
    decided: false,
    events: 0,
  };
  state.stages.set(k, s);
  return s;
}

/** Unanswered this long, a request went with an inference worker that died mid-batch. */
export const LOST_AFTER_MS = 5_000;

/**
 * Puts requests unanswered for LOST_AFTER_MS back in the backlog, to be decided again (a late
 * answer to the old id is ignored); returns how many. The batch a worker was running when it died
 * is never answered: before, its requests stayed pending for good (each model switch then
 * waited its full second for them, and the pump woke every 2 ms while any was left). Requests are
 * submitted in id order, so only the oldest few are looked at.
 */
export function requeueLost<P extends Pending>(
  pending: Map<number, P>,
  backlog: FairQueue<P>,
  now: number,
): number {
  let n = 0;
  for (const [id, p] of pending) {
    if (now - p.submittedAt < LOST_AFTER_MS) break;
    pending.delete(id);
    backlog.push(p.sandbox, key(p.episodeId, p.stage), p);
    n++;
  }
  return n;
}

function submitAll(state: State): void {
  while (state.backlog.size > 0) {
    const p = state.backlog.peek()!;
    const id = state.nextId++;
    if (state.pool.submit(p.state, id) === 0) {
      state.nextId--;
      return; // rings full: backpressure, retried on the next pump
    }
    p.submittedAt = performance.now();
    state.pending.set(id, p);
    state.backlog.shift();
  }
}

/**
 * Tracing: the adapter sees every lifecycle event first, so it owns each episode's span and its
 * stage spans; decisions carry the stage span's traceparent to the dispatcher, and the forwarded
 * episode-started carries the episode's to the episodes actor (and so to the DB write).
 */
function traceLifecycle(state: State, ctx: ActorContext, e: EpisodeLifecycle): EpisodeLifecycle {
  if (!state.tracing) return e;
  let spans = state.spans.get(e.episodeId);
  if (e.type === 'episode-started') {
    if (!spans) {
      while (state.spans.size >= ctx.config.telemetry.maxOpenStages) {
        endEpisode(state.spans.shift()![1], 'evicted');
      }
      spans = {
        episode: ctx.tracer.startSpan(
          'episode',
          { attributes: { 'warden.episode_id': e.episodeId, 'warden.sandbox': e.sandboxId } },
          ROOT_CONTEXT,
        ),
        stages: new Map(),
        outcomes: new Set(),
      };
      state.spans.set(e.episodeId, spans);
    }
    spans.stages.get(e.stage)?.span.end();
    const span = ctx.tracer.startSpan(
      `stage ${e.stage}`,
      { attributes: { 'warden.stage': e.stage, 'warden.cleaned': e.cleaned } },
      trace.setSpan(ROOT_CONTEXT, spans.episode),
    );
    spans.stages.set(e.stage, { span, traceparent: traceparentOf(span) });
    return { ...e, trace: traceparentOf(spans.episode) };
  }
  if (!spans) return e;
  const stage = spans.stages.get(e.stage);
  spans.stages.delete(e.stage);
  const k = key(e.episodeId, e.stage);
  const waiting = state.drained.get(k);
  if (waiting) {
    emitDecide(ctx, waiting); // the stage's last decisions, before its span ends
    state.drained.delete(k);
  }
  if (e.type === 'stage-outcome') {
    stage?.span.setAttributes({
      'warden.sandbox_detected': e.sandboxDetected,
      'warden.ground_truth': e.groundTruth,
    });
    stage?.span.end();
    spans.outcomes.add(e.stage);
    // Complete when both stages have ended, or stage 2 has and stage 1 was never seen.
    if (spans.outcomes.size === 2 || (e.stage === 2 && !spans.stages.has(1))) {
      endEpisode(spans, 'completed');
      state.spans.delete(e.episodeId);
    }
  } else {
    stage?.span.setStatus({ code: SpanStatusCode.ERROR, message: `${e.reason}: ${e.detail}` });
    stage?.span.end();
    endEpisode(spans, 'partial');
    state.spans.delete(e.episodeId);
  }
  return e;
}

function endEpisode(spans: EpisodeSpans, outcome: string): void {
  for (const { span } of spans.stages.values()) span.end();
  spans.stages.clear();
  spans.episode.setAttribute('warden.outcome', outcome);
  spans.episode.end();
}

function onDecision(state: State, d: PoolDecision): void {
  const p = state.pending.get(d.requestId);
  if (!p) return;
  state.pending.delete(d.requestId);
  state.intake.decided(p.slot);
  const stage = state.stages.get(key(p.episodeId, p.stage));
  if (!stage) {
    state.stageOver++;
    return;
  }
  if (stage.decided) {
    state.ignored++; // a decision for an event after the stage's verdict
    return;
  }
  if (STAGE_ENDING_ACTIONS.includes(d.action)) stage.decided = true;
  if (d.action === 1) stage.isolation = Math.min(MAX_ISOLATION, stage.isolation + 1);
  const context: ActionContext = {
    modelVersion: d.modelVersion,
    qValues: Array.from(d.qValues),
    confidence: d.confidence,
    source: d.source,
    topFeatures: topFeatures(p.state, state.names),
  };
  const decision: ActionDecision = {
    type: 'action-decision',
    actionId: `${p.episodeId}/${p.stage}/${p.seq}`,
    sandboxId: p.sandbox,
    episodeId: p.episodeId,
    stage: p.stage,
    seq: p.seq,
    action: d.action,
    context,
    decidedAt: Date.now(),
    ...(state.tracing
      ? { trace: state.spans.get(p.episodeId)?.stages.get(p.stage)?.traceparent }
      : {}),
  };
  if (state.tracing) {
    const k = key(p.episodeId, p.stage);
    const seen = state.drained.get(k);
    if (seen) {
      seen.n++;
      seen.since = Math.min(seen.since, p.receivedAt);
    } else {
      const stageSpan = state.spans.get(p.episodeId)?.stages.get(p.stage)?.span;
      if (stageSpan) state.drained.set(k, { stage: stageSpan, n: 1, since: p.receivedAt });
    }
  }
  state.decisions++;
  state.outActions.add(decision);
  state.outDecisions.push({
    episodeId: p.episodeId,
    stage: p.stage,
    seq: p.seq,
    action: d.action,
    confidence: d.confidence,
    modelVersion: d.modelVersion,
    source: d.source,
    decidedAt: decision.decidedAt,
    latencyMs: performance.timeOrigin + performance.now() - p.receivedAt,
  });
  state.outStates.push(p.state);
}

function flush(state: State, ctx: ActorContext): void {
  if (state.drained.size > 0) {
    // A decide span per stage covers its decisions from the earliest arrival to now, once the
    // window has passed (or the stage ends: traceLifecycle).
    const now = performance.timeOrigin + performance.now();
    for (const [k, d] of state.drained) {
      if (now - d.since < DECIDE_WINDOW_MS) continue;
      emitDecide(ctx, d);
      state.drained.delete(k);
    }
  }
  const actions = state.outActions.take();
  if (actions) ctx.send('dispatcher', actions);
  if (state.outDecisions.length > 0) {
    const vectors = state.outStates.splice(0);
    const dim = vectors[0]!.length;
    const states = new Float32Array(vectors.length * dim);
    for (const [i, v] of vectors.entries()) states.set(v, i * dim);
    const batch: DecisionBatch = {
      type: 'decisions',
      items: DECISION_SUMMARIES.pack(state.outDecisions.splice(0)),
      states,
    };
    ctx.send('episodes', batch);
  }
}

/** Decides what is queued, for at most `ms` (Warden stopping with runtime.resumeDir). */
async function decideQueued(state: State, ctx: ActorContext, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while ((state.pending.size > 0 || state.backlog.size > 0) && performance.now() < until) {
    void pump(state, ctx);
    await new Promise((r) => setTimeout(r, 5));
  }
  if (state.pending.size > 0 || state.backlog.size > 0)
    ctx.log.warn(
      { undecided: state.pending.size + state.backlog.size },
      'events still undecided at the stop: their stages go on after a restart without them',
    );
}

/** The stages the last run left (runtime/resume.ts); what does not fit this layout is skipped. */
function resumedStages(ctx: ActorContext): OldestFirstMap<string, StageState> {
  const stages = new OldestFirstMap<string, StageState>();
  const dir = resumeDirOf(ctx.config);
  const left =
    dir === undefined ? undefined : takeResumeFile(dir, ADAPTER_FILE, ctx.log, ctx.config.security);
  const rows = (left as { stages?: unknown } | undefined)?.stages;
  if (!Array.isArray(rows)) return stages;
  const { stateDim, horizon, maxOpenStages } = ctx.config.telemetry;
  let skipped = 0;
  for (const row of rows) {
    const [k, st] = Array.isArray(row) ? row : [];
    const o = (st ?? {}) as Record<string, unknown>;
    const acc = StateAccumulator.restore(o.acc, stateDim, horizon);
    const numbers = [o.isolation, o.nextSeq, o.events];
    if (typeof k !== 'string' || !acc || !numbers.every(Number.isFinite)) {
      skipped++;
      continue;
    }
    if (stages.size >= maxOpenStages) stages.shift();
    stages.set(k, {
      acc,
      cleaned: o.cleaned === true,
      isolation: o.isolation as number,
      nextSeq: o.nextSeq as number,
      decided: o.decided === true,
      events: o.events as number,
    });
  }
  ctx.log.info({ stages: stages.size, skipped }, 'running state vectors of the last run taken up');
  return stages;
}

async function pump(state: State, ctx: ActorContext): Promise<void> {
  if (state.pumping) return;
  state.pumping = true;
  try {
    while (state.pending.size > 0 || state.backlog.size > 0) {
      state.resubmitted += requeueLost(state.pending, state.backlog, performance.now());
      submitAll(state);
      const got = state.pool.drain((d) => onDecision(state, d));
      flush(state, ctx);
      if (got === 0) await state.pool.waitForResponses(2);
      // let new batches from the receivers in
      if (got > 0) await new Promise((r) => setImmediate(r));
    }
  } finally {
    state.pumping = false;
  }
}

export default defineActor<AdapterMessage, State>({
  name: 'adapter',
  async init(ctx) {
    const intake = new IntakeCounts(ctx.shared.intake);
    intake.dropHeld(); // a restarted adapter: what its predecessor held went with it
    const pool = await InferencePool.start(ctx.config, ctx.log);
    await pool.loadLatest(ctx.config.models.dir);
    const activated: ModelActivated = {
      type: 'model-activated',
      version: pool.activeVersion,
      previousVersion: null,
      reason: 'start',
    };
    ctx.send(SYSTEM, activated);
    return {
      pool,
      intake,
      stages: resumedStages(ctx),
      pending: new Map(),
      backlog: new FairQueue(),
      tracing: ctx.tracer !== NOOP_TRACER,
      spans: new OldestFirstMap(),
      drained: new Map(),
      names: featureNames(ctx.config.telemetry.stateDim),
      pumping: false,
      outActions: new ActionPacker(),
      outDecisions: [],
      outStates: [],
      nextId: 1,
      decisions: 0,
      ignored: 0,
      stageOver: 0,
      overLimit: 0,
      evicted: 0,
      resubmitted: 0,
      handoffs: new Float64Array(4096),
      handoffAt: new Float64Array(4096),
      handoffNext: 0,
      switching: Promise.resolve(),
    };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case 'sandbox-events': {
        // Property 1: from a batch's arrival at its receiver to the adapter taking it (ms).
        const now = performance.now();
        state.handoffAt[state.handoffNext & 4095] = now;
        state.handoffs[state.handoffNext++ & 4095] =
          performance.timeOrigin + now - message.receivedAt;
        const limits = ctx.config.telemetry;
        const p = message.telemetry;
        const lifecycle = message.lifecycle;
        const slot = state.intake.slotOf(message.sandbox);
        let queued = 0;
        let next = 0;
        for (let i = 0; i <= p.count; i++) {
          // Lifecycle events in their place among the telemetry.
          for (; next < lifecycle.length && lifecycle[next]!.at <= i; next++) {
            const e = lifecycle[next]!.event;
            const k = key(e.episodeId, e.stage);
            if (e.type === 'episode-started') {
              state.stages.delete(k);
              openStage(state, ctx, k, e.cleaned);
            } else state.stages.delete(k);
            ctx.send('episodes', traceLifecycle(state, ctx, e));
          }
          if (i === p.count) break;
          const episodeId = episodeIdAt(p, i);
          const stage = stageAt(p, i);
          const seq = seqAt(p, i);
          const k = key(episodeId, stage);
          const s = state.stages.get(k) ?? openStage(state, ctx, k, false);
          if (s.decided || seq < s.nextSeq) continue; // decided, or a replay after a reconnect
          s.nextSeq = seq + 1;
          if (++s.events > limits.maxEventsPerStage) {
            // A flooding sample: counted, not decided on (the stage keeps its last decision).
            state.overLimit++;
            if (s.events === limits.maxEventsPerStage + 1)
              ctx.log.warn(
                { sandbox: message.sandbox, episodeId, stage },
                `stage passed telemetry.maxEventsPerStage (${limits.maxEventsPerStage}); later events are counted, not decided`,
              );
            continue;
          }
          s.acc.addColumns(p.numbers, i * COLUMNS, apiNameAt(p, i));
          queued++;
          state.backlog.push(message.sandbox, k, {
            sandbox: message.sandbox,
            slot,
            episodeId,
            stage,
            seq,
            state: s.acc.vector(stage, s.isolation, s.cleaned),
            receivedAt: message.receivedAt,
            submittedAt: 0,
          });
        }
        // The lifecycle events and the telemetry not queued for a decision are done with.
        state.intake.take(slot, p.count + lifecycle.length, queued);
        void pump(state, ctx);
        return state;
      }
      case 'model-published':
        switchModel(state, ctx, () => hotReload(state, ctx, message.metadata.version));
        return state;
      case 'pump':
        void pump(state, ctx);
        return state;
      case 'rollback':
        switchModel(state, ctx, async () => {
          const previous = state.pool.activeVersion;
          const now = await state.pool.rollback(ctx.config.models.dir);
          await oldAnswersDrained(state);
          const activated: ModelActivated = {
            type: 'model-activated',
            version: now,
            previousVersion: previous,
            reason: 'rollback',
          };
          ctx.send(SYSTEM, activated);
        });
        return state;
      default:
        return assertNever(message);
    }
  },
  configure(state, config) {
    void state.pool.configure(config);
    return state;
  },
  stats: (s) => {
    const handoffs = recentHandoffs(s);
    return {
      decisions: s.decisions,
      ignoredAfterVerdict: s.ignored,
      droppedStageOver: s.stageOver,
      pending: s.pending.size,
      backlog: s.backlog.size,
      overStageLimit: s.overLimit,
      evictedStages: s.evicted,
      resubmitted: s.resubmitted,
      handoffP99Ms: percentile(handoffs, 0.99),
      handoffMaxMs: handoffs.reduce((m, v) => Math.max(m, v), 0),
      stages: s.stages.size,
      poolRestarts: s.pool.restarts,
      modelAlerts: s.pool.alerts.length,
      modelRefused: s.pool.alerts.filter((a) => a.reason !== 'missing').length,
    };
  },
  async stop(state, ctx) {
    await state.switching;
    const dir = resumeDirOf(ctx.config);
    // Stages that go on after a restart: what is queued is decided first (the dispatcher and the
    // episodes actor stop after this one), as the receivers' ledgers count it accepted.
    if (dir !== undefined) await decideQueued(state, ctx, ctx.config.runtime.shutdownTimeoutMs / 2);
    for (const d of state.drained.values()) emitDecide(ctx, d);
    state.drained.clear();
    for (const spans of state.spans.values()) endEpisode(spans, 'unfinished');
    state.spans.clear();
    await state.pool.close();
    if (dir !== undefined) {
      try {
        writeResumeFile(
          dir,
          ADAPTER_FILE,
          {
            stages: [...state.stages].map(([k, st]) => [
              k,
              {
                acc: st.acc.snapshot(),
                cleaned: st.cleaned,
                isolation: st.isolation,
                nextSeq: st.nextSeq,
                decided: st.decided,
                events: st.events,
              },
            ]),
          },
          ctx.config.security,
        );
      } catch (error) {
        ctx.log.error(
          { err: error, dir },
          'running state vectors not written (runtime.resumeDir): their stages start afresh after a restart',
        );
      }
    }
  },
});
