// The episodes actor: one record per episode across both stages. Decisions (with their states)
// become transitions when the stage's outcome says the truth: a step cost per decision, the
// verdict's reward on the last (rewards.ts). Every transition of both stages goes into the shared
// replay storage (one contiguous append per stage), the whole trajectory to the DB writer when the
// episode ends (a partial one, flagged, when a stage fails or the episode goes silent), a learned
// pattern for each confirmed malicious verdict, and the episode's reward to the learner.

import { hostIdOf } from '../../cluster/host.ts';
import { type ActionId, STAGE_ENDING_ACTIONS } from '../../messages/action.ts';
import type { EpisodeLifecycle, Label, Stage } from '../../messages/episode.ts';
import type { Experience, ExperienceRows } from '../../messages/experience.ts';
import { ACTION_FAILURES, ACTION_FEEDBACK, type DispatchResult } from '../../messages/feedback.ts';
import type { EpisodeTrajectory, TrajectoryStep } from '../../messages/trajectory.ts';
import { type ActorContext, assertNever, defineActor, SYSTEM } from '../../runtime/actor.ts';
import { OldestFirstMap } from '../../runtime/oldest-first-map.ts';
import {
  EPISODES_FILE,
  resumeDirOf,
  STALE_EPISODES_FILE,
  takeResumeFile,
  writeResumeFile,
} from '../../runtime/resume.ts';
import { ReplayStorage } from '../../runtime/shared/replay-storage.ts';
import {
  DECISION_SUMMARIES,
  type DecisionBatch,
  type DecisionSummary,
  type FailureBatch,
  type ResultBatch,
} from '../adapter/index.ts';
import { DegradationMonitor } from './degradation.ts';
import { hindsightVerdicts } from './hindsight.ts';
import { learnedPattern } from './patterns.ts';
import { type Feedback, feedbackReward, stepCost, verdictOf, verdictReward } from './rewards.ts';

export type EpisodesMessage =
  | DecisionBatch
  | EpisodeLifecycle
  | ResultBatch
  | FailureBatch
  | { readonly type: 'sweep' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    episodes: EpisodesMessage;
  }
}

/** Upper bounds (seconds) of the decision-latency histogram buckets. */
export const LATENCY_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

const cumulative = (xs: readonly number[]) => {
  let sum = 0;
  return xs.map((x) => {
    sum += x;
    return sum;
  });
};

interface Decided {
  readonly state: Float32Array;
  readonly action: ActionId;
  readonly seq: number;
  readonly confidence: number;
  readonly modelVersion: string;
  /** When the adapter decided (epoch ms). */
  readonly decidedAt: number;
  /** The sandbox's answer, once it arrives (property 22). */
  feedback?: Feedback;
}

interface EpisodeRecord {
  readonly episodeId: string;
  readonly replayId: number;
  readonly startedAt: number;
  lastSeen: number;
  label: Label;
  family: string | null;
  artifactHash: string | null;
  /** The episode span's traceparent (tracing on): the trajectory's DB write joins the trace. */
  trace: string | undefined;
  modelVersion: string;
  totalReward: number;
  readonly decisions: Map<Stage, Decided[]>;
  readonly steps: TrajectoryStep[];
  /** Stages whose outcome came. Stage 2 may end first when the stages run in two sandboxes
   *  (positive and negative): the episode is complete once both have. */
  readonly stagesDone: Set<Stage>;
  /** Stages whose start was seen (a Warden started mid-episode sees only the later ones). */
  readonly stagesStarted: Set<Stage>;
}

export interface DetectionCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

interface State {
  readonly replay: ReplayStorage | undefined;
  /** Open episodes, least recently active first (re-filed at most every TOUCH_MS). */
  readonly episodes: OldestFirstMap<string, EpisodeRecord>;
  readonly detection: Record<Stage, DetectionCounts>;
  readonly latencies: number[];
  /** Decisions per latency bucket (LATENCY_BUCKETS_S; beyond the last: not counted here), made
   *  cumulative in stats() for Prometheus — one increment per decision. */
  readonly latencyBuckets: number[];
  latencySumS: number;
  /** Decisions by action id. */
  readonly byAction: number[];
  readonly degradation: DegradationMonitor;
  degradationAlerts: number;
  nextReplayId: number;
  completed: number;
  partial: number;
  /** Episodes stored as partial to stay within dispatch.maxOpenEpisodes. */
  evicted: number;
  transitions: number;
  /** Hindsight verdicts added to the replay beside the played transitions (hindsight.ts). */
  hindsight: number;
  patterns: number;
  decisions: number;
  feedback: number;
  failedActions: number;
  /** Transitions sent to the shared experiences table (cluster.role inference). */
  experienceRows: number;
  /** Feedback matched to its decision and counted in that step's reward (property 22). */
  feedbackRewarded: number;
  sweep: NodeJS.Timeout | undefined;
}

/** An open episode as a stopping Warden writes it down (runtime/resume.ts). */
function written(r: EpisodeRecord) {
  const now = Date.now();
  return {
    episodeId: r.episodeId,
    startedAt: r.startedAt,
    idleMs: now - r.lastSeen, // the time Warden is down does not count as silence
    label: r.label,
    family: r.family,
    artifactHash: r.artifactHash,
    trace: r.trace,
    modelVersion: r.modelVersion,
    totalReward: r.totalReward,
    decisions: [...r.decisions],
    steps: r.steps,
    stagesDone: [...r.stagesDone],
    stagesStarted: [...r.stagesStarted],
  };
}

/** Takes up the episodes `written` wrote and returns them (one that does not read is skipped). */
function restoreRecords(state: State, left: unknown, ctx: ActorContext): EpisodeRecord[] {
  const list = (left as { episodes?: unknown } | undefined)?.episodes;
  const taken: EpisodeRecord[] = [];
  if (!Array.isArray(list)) return taken;
  const dim = ctx.config.telemetry.stateDim;
  const stageOf = (v: unknown): Stage | undefined => (v === 1 || v === 2 ? v : undefined);
  // States come back as Float32Arrays (typed-json.ts), of the dimension served now.
  const vector = (v: unknown) => {
    if (!(v instanceof Float32Array) || v.length !== dim)
      throw new Error('a state of another dimension');
    return v;
  };
  for (const item of list as ReturnType<typeof written>[]) {
    try {
      if (typeof item?.episodeId !== 'string' || state.episodes.has(item.episodeId)) continue;
      const decisions = new Map<Stage, Decided[]>();
      for (const [stage, ds] of item.decisions) {
        const st = stageOf(stage);
        if (st !== undefined)
          decisions.set(
            st,
            ds.map((d) => ({ ...d, state: vector(d.state) })),
          );
      }
      const steps = item.steps.map((s) => ({ ...s, state: vector(s.state) }));
      const r = record(state, item.episodeId, ctx);
      Object.assign(r, {
        startedAt: Number(item.startedAt) || Date.now(),
        lastSeen: Date.now() - Math.max(0, Number(item.idleMs) || 0),
        label: item.label,
        family: item.family,
        artifactHash: item.artifactHash,
        trace: item.trace,
        modelVersion: item.modelVersion,
        totalReward: Number(item.totalReward) || 0,
      });
      for (const [stage, ds] of decisions) r.decisions.set(stage, ds);
      r.steps.push(...steps);
      for (const st of item.stagesDone) if (stageOf(st)) r.stagesDone.add(st);
      for (const st of item.stagesStarted) if (stageOf(st)) r.stagesStarted.add(st);
      taken.push(r);
    } catch (error) {
      ctx.log.warn(
        { err: error, episodeId: (item as { episodeId?: unknown })?.episodeId },
        'an open episode of the last run could not be read: skipped',
      );
    }
  }
  return taken;
}

/** Re-filed as recently active at most this often (the open-episode bound evicts the quietest). */
const TOUCH_MS = 1_000;

function record(state: State, episodeId: string, ctx: ActorContext): EpisodeRecord {
  const now = Date.now();
  let r = state.episodes.get(episodeId);
  if (r) {
    if (now - r.lastSeen >= TOUCH_MS) {
      state.episodes.delete(episodeId);
      state.episodes.set(episodeId, r);
    }
    r.lastSeen = now;
    return r;
  }
  const { maxOpenEpisodes } = ctx.config.dispatch;
  while (state.episodes.size >= maxOpenEpisodes) {
    // A sandbox (or many) opening episodes and never ending them would otherwise hold memory
    // until the silence timeout: the least recently active goes to the database as partial.
    const [, quietest] = state.episodes.shift()!;
    if (state.evicted++ === 0)
      ctx.log.warn(
        { maxOpenEpisodes },
        'too many open episodes: the least recently active are stored as partial (counted as evicted)',
      );
    finishEpisode(
      state,
      ctx,
      quietest,
      `evicted: more than ${maxOpenEpisodes} episodes open (dispatch.maxOpenEpisodes)`,
    );
  }
  r = {
    episodeId,
    replayId: state.nextReplayId++ | 0,
    startedAt: now,
    lastSeen: now,
    label: 'unknown',
    family: null,
    artifactHash: null,
    trace: undefined,
    modelVersion: 'rules',
    totalReward: 0,
    decisions: new Map(),
    steps: [],
    stagesDone: new Set(),
    stagesStarted: new Set(),
  };
  state.episodes.set(episodeId, r);
  return r;
}

function onDecision(
  state: State,
  d: DecisionSummary,
  vector: Float32Array,
  ctx: ActorContext,
): void {
  // Property 35: every decision, with its action and confidence (debug: free when off).
  if (ctx.log.isLevelEnabled('debug'))
    ctx.log.debug(
      {
        event: 'decision',
        episodeId: d.episodeId,
        stage: d.stage,
        seq: d.seq,
        action: d.action,
        confidence: d.confidence,
        modelVersion: d.modelVersion,
        source: d.source,
        latencyMs: d.latencyMs,
      },
      'decision',
    );
  const r = record(state, d.episodeId, ctx);
  r.modelVersion = d.modelVersion;
  const list = r.decisions.get(d.stage) ?? [];
  list.push({
    state: vector,
    action: d.action,
    seq: d.seq,
    confidence: d.confidence,
    modelVersion: d.modelVersion,
    decidedAt: d.decidedAt,
  });
  r.decisions.set(d.stage, list);
  state.decisions++;
  state.latencies.push(d.latencyMs);
  const seconds = d.latencyMs / 1000;
  state.latencySumS += seconds;
  const b = LATENCY_BUCKETS_S.findIndex((le) => seconds <= le);
  if (b >= 0) state.latencyBuckets[b]!++;
  state.byAction[d.action] = (state.byAction[d.action] ?? 0) + 1;
  if (state.latencies.length > 4_096) state.latencies.splice(0, 2_048);
}

/** Records the sandbox's feedback on the decision it answers; the stage's rewards include it. */
function onFeedback(state: State, r: DispatchResult): void {
  if (r.type === 'action-feedback') state.feedback++;
  else state.failedActions++;
  // actionId is "<episode>/<stage>/<seq>" (the adapter's); episode ids may contain "/".
  const parts = r.actionId.split('/');
  const seq = Number(parts.pop());
  const stage = Number(parts.pop()) as Stage;
  const decided = state.episodes.get(parts.join('/'))?.decisions.get(stage) ?? [];
  // Feedback comes shortly after its decision: looked for from the newest. From the oldest, a
  // stage of 10,000 decisions (a flooding sample, telemetry.maxEventsPerStage) cost this thread
  // 126-180 ms in matching alone, against 6-16 ms (scratch measure, feedback 256 decisions behind).
  let d: Decided | undefined;
  for (let i = decided.length - 1; i >= 0 && !d; i--) if (decided[i]!.seq === seq) d = decided[i];
  if (!d) return; // the stage already ended (late feedback): counted above
  // Feedback on another action at this seq is the earlier run's, arriving after the sandbox ran the
  // stage again under its id (a start sent again): it says nothing of this run's decision.
  if (r.type === 'action-feedback' && r.action !== d.action) return;
  d.feedback = r.type === 'action-failed' ? 'failed' : r.applied ? 'applied' : 'not-applied';
  state.feedbackRewarded++;
}

function finishStage(
  state: State,
  ctx: ActorContext,
  r: EpisodeRecord,
  stage: Stage,
  truth: Label,
): void {
  const decided = r.decisions.get(stage) ?? [];
  r.decisions.delete(stage);
  if (stage === 1) r.label = truth; // stage 2 may replay a cleaned file: the episode's label is stage 1's truth
  const last = decided.at(-1);
  const verdict =
    last && STAGE_ENDING_ACTIONS.includes(last.action) ? verdictOf(last.action)! : 'benign';
  const rewards = ctx.config.rewards;
  const debug = ctx.log.isLevelEnabled('debug');
  const experiences: Experience[] = decided.map((d, i) => {
    const isLast = i === decided.length - 1;
    const reward =
      stepCost(d.action, rewards) +
      (d.feedback ? feedbackReward(d.action, d.feedback, rewards) : 0) +
      (isLast ? verdictReward(verdict, truth, rewards) : 0);
    const next = decided[i + 1]?.state ?? d.state;
    r.steps.push({
      stage,
      step: i,
      state: d.state, // the decision's own copy (see 'decisions' in handle)
      action: d.action,
      reward,
      done: isLast,
    });
    r.totalReward += reward;
    // Property 33: every transition with its action and reward.
    if (debug)
      ctx.log.debug(
        {
          event: 'transition',
          episodeId: r.episodeId,
          stage,
          step: i,
          action: d.action,
          reward,
          done: isLast,
        },
        'transition',
      );
    return {
      state: d.state,
      action: d.action,
      reward,
      nextState: next,
      done: isLast,
      episode: r.replayId,
      stage,
    };
  });
  if (experiences.length > 0) state.transitions += state.replay?.append(experiences) ?? 0;
  // Hindsight verdicts (hindsight.ts): every verdict at a spread of a labelled stage 1's states.
  const counterfactuals =
    stage === 1
      ? hindsightVerdicts(
          decided.map((d) => d.state),
          truth,
          rewards,
          ctx.config.learning.hindsightStates,
          r.replayId,
          stage,
        )
      : [];
  if (counterfactuals.length > 0 && state.replay)
    state.hindsight += state.replay.append(counterfactuals);
  // Scale-out (cluster.role inference): the stage's transitions go to the shared experiences
  // table through the DB writer (durable journal included), for the learner host; the hindsight
  // verdicts too, as steps −1, −2, … (the table's key is host, episode, stage and step).
  if (ctx.config.cluster.role === 'inference' && decided.length > 0) {
    const hostId = hostIdOf(ctx.config);
    const decisionOf = new Map(decided.map((d) => [d.state, d]));
    const rows: ExperienceRows = {
      type: 'experience-rows',
      rows: [
        ...r.steps
          .filter((s) => s.stage === stage)
          .map((s, i, steps) => ({
            ...s,
            state: Array.from(s.state),
            nextState: Array.from(steps[i + 1]?.state ?? s.state),
            hostId,
            episodeId: r.episodeId,
            modelVersion: decided[s.step]?.modelVersion ?? r.modelVersion,
            decidedAt: decided[s.step]?.decidedAt ?? Date.now(),
          })),
        ...counterfactuals.map((e, j) => {
          const d = decisionOf.get(e.state)!; // a verdict keeps its decision's own state
          const state = Array.from(e.state);
          return {
            stage,
            step: -1 - j,
            state,
            action: e.action,
            reward: e.reward,
            done: true,
            nextState: state,
            hostId,
            episodeId: r.episodeId,
            modelVersion: d.modelVersion,
            decidedAt: d.decidedAt,
          };
        }),
      ],
    };
    ctx.send('db-writer', rows);
    state.experienceRows += rows.rows.length;
  }
  if (truth !== 'unknown' && stage === 1 && last) {
    const correct = (verdict !== 'benign') === (truth === 'malicious');
    const stageReward = experiences.reduce((sum, e) => sum + e.reward, 0);
    const alert = state.degradation.record(last.modelVersion, correct, stageReward);
    if (alert) {
      state.degradationAlerts++;
      ctx.log.error(
        { alert: 'warden_model_degraded', ...alert },
        `model ${alert.version} degraded against ${alert.previousVersion}`,
      );
      ctx.send(SYSTEM, alert);
      // Automatic rollback (alerts.autoRollback): the adapter's pool switches back at once.
      if (ctx.config.alerts.autoRollback) ctx.send('adapter', { type: 'rollback' });
    }
  }
  if (truth !== 'unknown') {
    const c = state.detection[stage];
    const flagged = verdict !== 'benign';
    if (flagged && truth === 'malicious') c.tp++;
    else if (flagged) c.fp++;
    else if (truth === 'malicious') c.fn++;
    else c.tn++;
  }
  if (last && verdict === 'malicious' && truth === 'malicious') {
    ctx.send(
      'db-writer',
      learnedPattern({
        episodeId: r.episodeId,
        stage,
        state: last.state,
        action: last.action,
        reward: experiences.at(-1)!.reward,
        confidence: last.confidence,
        modelVersion: last.modelVersion,
        family: r.family,
        timestamp: Date.now(),
      }),
    );
    state.patterns++;
  }
  r.stagesDone.add(stage);
}

function finishEpisode(
  state: State,
  ctx: ActorContext,
  r: EpisodeRecord,
  failure: string | null,
): void {
  state.episodes.delete(r.episodeId);
  const trajectory: EpisodeTrajectory = {
    type: 'episode-trajectory',
    episodeId: r.episodeId,
    label: r.label,
    partial: failure !== null,
    failureReason: failure,
    artifactHash: r.artifactHash,
    ...(r.trace ? { trace: r.trace } : {}),
    modelVersion: r.modelVersion,
    totalReward: r.totalReward,
    startedAt: r.startedAt,
    endedAt: Date.now(),
    steps: r.steps,
  };
  ctx.send('db-writer', trajectory);
  if (failure === null) {
    state.completed++;
    ctx.send('learner', { type: 'episode-finished', reward: r.totalReward });
  } else state.partial++;
}

export default defineActor<EpisodesMessage, State>({
  name: 'episodes',
  init(ctx) {
    const buffer = ctx.shared.replay;
    const state: State = {
      replay: buffer ? new ReplayStorage(buffer) : undefined,
      episodes: new OldestFirstMap(),
      detection: { 1: { tp: 0, fp: 0, tn: 0, fn: 0 }, 2: { tp: 0, fp: 0, tn: 0, fn: 0 } },
      latencies: [],
      latencyBuckets: LATENCY_BUCKETS_S.map(() => 0),
      latencySumS: 0,
      byAction: [0, 0, 0, 0, 0, 0],
      degradation: new DegradationMonitor(ctx.config.alerts),
      degradationAlerts: 0,
      nextReplayId: 1,
      completed: 0,
      partial: 0,
      evicted: 0,
      transitions: 0,
      hindsight: 0,
      patterns: 0,
      decisions: 0,
      feedback: 0,
      failedActions: 0,
      experienceRows: 0,
      feedbackRewarded: 0,
      sweep: undefined,
    };
    state.sweep = setInterval(
      () => ctx.send('episodes', { type: 'sweep' }),
      Math.min(
        5_000,
        ctx.config.dispatch.episodeTimeoutMs,
        ctx.config.dispatch.maxEpisodeDurationMs,
      ),
    );
    state.sweep.unref();
    // What the last run left open (runtime/resume.ts): taken up, or stored as partial now.
    const dir = resumeDirOf(ctx.config);
    if (dir !== undefined) {
      const left = takeResumeFile(dir, EPISODES_FILE, ctx.log, ctx.config.security);
      if (left !== undefined) {
        const taken = restoreRecords(state, left, ctx);
        ctx.log.info({ episodes: taken.length }, 'open episodes of the last run taken up');
      }
      const stale = takeResumeFile(dir, STALE_EPISODES_FILE, ctx.log, ctx.config.security);
      if (stale !== undefined)
        for (const r of restoreRecords(state, stale, ctx))
          finishEpisode(state, ctx, r, 'unfinished at shutdown (not taken up after the restart)');
    }
    return state;
  },
  handle(state, message, ctx) {
    switch (message.type) {
      case 'decisions': {
        const items = DECISION_SUMMARIES.unpack(message.items);
        const states = message.states;
        const dim = items.length > 0 ? states.length / items.length : 0;
        // A copy per decision: a view would keep the whole batch alive as long as its longest episode.
        for (const [i, d] of items.entries())
          onDecision(state, d, states.slice(i * dim, (i + 1) * dim), ctx);
        return state;
      }
      case 'action-results':
        for (const r of ACTION_FEEDBACK.unpack(message.items)) onFeedback(state, r);
        return state;
      case 'action-failures':
        for (const r of ACTION_FAILURES.unpack(message.items)) onFeedback(state, r);
        return state;
      case 'episode-started': {
        // A stage this episode has already begun, started again: the sandbox ran it anew under
        // the same id (it restarted and numbers its episodes from 1 again; receiver/ledger.ts lets
        // such a start through). The run before it is over, and is stored as such, not merged.
        const before = state.episodes.get(message.episodeId);
        if (
          before &&
          (before.stagesStarted.has(message.stage) ||
            before.decisions.has(message.stage) ||
            before.stagesDone.has(message.stage))
        )
          finishEpisode(state, ctx, before, `stage ${message.stage} started again by the sandbox`);
        const r = record(state, message.episodeId, ctx);
        r.stagesStarted.add(message.stage);
        if (message.artifactHash) r.artifactHash = message.artifactHash;
        if (message.trace) r.trace = message.trace;
        return state;
      }
      case 'stage-outcome': {
        const r = record(state, message.episodeId, ctx);
        if (message.family) r.family = message.family;
        if (r.stagesDone.has(message.stage)) return state; // a repeated outcome
        finishStage(state, ctx, r, message.stage, message.groundTruth);
        // Complete when both stages have ended, or stage 2 has and stage 1 was never seen.
        const stage1Seen = r.stagesStarted.has(1) || r.decisions.has(1) || r.stagesDone.has(1);
        if (r.stagesDone.size === 2 || (message.stage === 2 && !stage1Seen))
          finishEpisode(state, ctx, r, null);
        return state;
      }
      case 'stage-failed': {
        const r = record(state, message.episodeId, ctx);
        finishEpisode(
          state,
          ctx,
          r,
          `stage ${message.stage}: ${message.reason}${message.detail ? ` (${message.detail})` : ''}`,
        );
        return state;
      }
      case 'sweep': {
        const now = Date.now();
        const { episodeTimeoutMs, maxEpisodeDurationMs } = ctx.config.dispatch;
        for (const r of [...state.episodes.values()]) {
          if (r.lastSeen < now - episodeTimeoutMs)
            finishEpisode(
              state,
              ctx,
              r,
              r.stagesDone.has(2)
                ? "timeout: stage 2 ended, stage 1's outcome never came"
                : 'timeout: the sandbox went silent',
            );
          else if (r.startedAt < now - maxEpisodeDurationMs)
            finishEpisode(
              state,
              ctx,
              r,
              `duration limit: still running after ${maxEpisodeDurationMs} ms (dispatch.maxEpisodeDurationMs)`,
            );
        }
        return state;
      }
      default:
        return assertNever(message);
    }
  },
  stats(s) {
    const sorted = [...s.latencies].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    const flat = (stage: Stage) =>
      Object.fromEntries(
        Object.entries(s.detection[stage]).map(([k, v]) => [`stage${stage}_${k}`, v]),
      );
    return {
      completed: s.completed,
      partial: s.partial,
      evicted: s.evicted,
      open: s.episodes.size,
      transitions: s.transitions,
      hindsight: s.hindsight,
      patterns: s.patterns,
      degradationAlerts: s.degradationAlerts,
      decisions: s.decisions,
      feedback: s.feedback,
      failedActions: s.failedActions,
      experienceRows: s.experienceRows,
      feedbackRewarded: s.feedbackRewarded,
      latencyP50Ms: q(0.5),
      latencyP99Ms: q(0.99),
      latencySumS: s.latencySumS,
      ...Object.fromEntries(
        cumulative(s.latencyBuckets).map((n, b) => [`latency_le:${LATENCY_BUCKETS_S[b]}`, n]),
      ),
      ...Object.fromEntries(s.byAction.map((n, a) => [`action:${a}`, n])),
      replaySize: s.replay?.size ?? 0,
      replayCapacity: s.replay?.capacity ?? 0,
      ...flat(1),
      ...flat(2),
    };
  },
  stop(state, ctx) {
    clearInterval(state.sweep);
    const dir = resumeDirOf(ctx.config);
    // Written even with none open: the set is whole only with every part (runtime/resume.ts).
    if (dir !== undefined) {
      try {
        writeResumeFile(
          dir,
          EPISODES_FILE,
          { episodes: [...state.episodes.values()].map(written) },
          ctx.config.security,
        );
        return; // the next start takes them up, or stores them as partial
      } catch (error) {
        ctx.log.error(
          { err: error, dir },
          'open episodes not written (runtime.resumeDir): stored as partial',
        );
      }
    }
    for (const r of [...state.episodes.values()])
      finishEpisode(state, ctx, r, 'unfinished at shutdown');
  },
});
