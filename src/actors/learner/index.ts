// The learner actor (its own worker thread by default): trains continuously from the shared
// replay storage the episodes actor fills, and exports a validated model every exportEvery
// updates, announcing it as `model-published` to the registry. Metrics are its stats
// (property 34): loss, epsilon, average reward, updates/s.
// Every candidate is judged on a fixed held-out set against the version in service (the latest
// model it resumed from, or its last export): one that forgot (balanced accuracy more than
// alerts.maxAccuracyDrop lower) raises the degradation alert and, with
// learning.revertOnForgetting, is not exported; learning goes back to the weights in service
// (requirement 7.5: long runs stay stable).
// A candidate is the mean of the learner's last learning.averageSnapshots snapshots of its
// weights, one every learning.averageEvery updates (weight averaging,
// src/training/weight-average.ts): the greedy policy of any one point swings, the mean between
// those swings is steadier. Learning itself goes on from the latest weights.
// Continuing from a trained version, it fine-tunes slowly (learning.resumeLearningRate; each
// exported candidate doubles the rate up to learning.learningRate, each refused one halves it)
// and rehearses recorded episodes of the data that version learned from (rehearsal.ts).

import { readFileSync } from 'node:fs';
import type { WardenConfig } from '../../config/schema.ts';
import type { ModelPublished } from '../../messages/model.ts';
import type { RecordedTrace } from '../../messages/recorded.ts';
import { readPolicyParams } from '../../models/read-params.ts';
import { signingKeyFromEnv } from '../../models/signing.ts';
import { exportModel, modelFile, pruneVersions, versionsToTry } from '../../models/store.ts';
import { type ActorContext, assertNever, defineActor, SYSTEM } from '../../runtime/actor.ts';
import { ReplayStorage } from '../../runtime/shared/replay-storage.ts';
import {
  evaluateParams,
  forgetting,
  type HeldOutResult,
  loadHeldOut,
} from '../../training/held-out.ts';
import { createEngine } from '../../training/train.ts';
import { WeightAverage } from '../../training/weight-average.ts';
import { DqnLearner } from './dqn.ts';
import { hyperParameters, sampleOptions } from './hyper-parameters.ts';
import { initParams, type QNetParams } from './q-network.ts';
import { loadRehearsal, Rehearsal } from './rehearsal.ts';

export type LearnerMessage =
  | { readonly type: 'episode-finished'; readonly reward: number }
  | { readonly type: 'export-now' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    learner: LearnerMessage;
  }
}

interface LearnerState {
  readonly learner: DqnLearner;
  /** The fixed held-out episodes every exported version is judged on (empty = off). */
  heldOut: RecordedTrace[];
  /** The held-out result of the version in service (resumed or last exported). */
  lastHeldOut: HeldOutResult | undefined;
  /** The best held-out result of the versions served since the learner started: the bar. */
  best: HeldOutResult | undefined;
  /** The weights of that version, to go back to when a candidate forgot. */
  inService: QNetParams | undefined;
  /** The version the learner resumed from; judged on the held-out set at the first export. */
  readonly resumedVersion: string | undefined;
  heldOutAlerts: number;
  /** Candidates not exported: worse than the best version served since the start
   *  (learning.exportTolerance, learning.revertOnForgetting). */
  reverted: number;
  readonly loop: { stopped: boolean; done: Promise<void> };
  exported: number;
  exportFailures: number;
  lastExportAt: number;
  /** Recorded episodes added beside the online ones while fine-tuning a trained version. */
  rehearsal: Rehearsal | undefined;
  /**
   * Settles once heldOut and rehearsal are loaded. They load after init, so a learner thread
   * answers READY without waiting for seconds of data parsing (a loaded CI host took over 30 s);
   * training and exports wait for it.
   */
  readonly loaded: Promise<void>;
  dataLoaded: boolean;
  /** The last learning.averageSnapshots snapshots of the weights; null when averaging is off. */
  average: WeightAverage | null;
  /** How many snapshots the last exported model is the mean of (1 = the last weights). */
  lastExportSnapshots: number;
}

/** A snapshot every averageEvery updates into a window of averageSnapshots (0: averaging off). */
function snapshot(
  state: LearnerState,
  { averageSnapshots, averageEvery }: WardenConfig['learning'],
): void {
  if (averageSnapshots === 0) {
    state.average = null;
    return;
  }
  if (state.learner.updates % averageEvery !== 0) return;
  // A new window size (live configuration) starts a new window.
  if (state.average?.window !== averageSnapshots)
    state.average = new WeightAverage(averageSnapshots);
  state.average.add(state.learner.engine.getParams());
}

/** Where models are announced: the registry when it runs, else the system (and the log). */
const ANNOUNCE_TO = SYSTEM;

/** The held-out result of the version resumed from: the bar for the first candidate. */
async function judgeResumed(
  state: LearnerState,
  ctx: ActorContext,
  version: string,
  params: QNetParams,
): Promise<HeldOutResult> {
  const report = await evaluateParams(params, state.heldOut, ctx.config);
  ctx.log.info(
    { version, heldOutBalancedAccuracy: report.balancedAccuracy },
    'the version in service is the bar for every candidate',
  );
  return {
    version,
    accuracy: report.balancedAccuracy,
    auc: report.auc,
    reward: report.meanReward,
    episodes: report.episodes,
  };
}

/**
 * After a refused candidate: learning that keeps making the model worse goes slower (online data
 * fine-tuning a trained model at its full learning rate lost 10–20 points of held-out balanced
 * accuracy within 2,000 updates; at 1/100 of it, about 2). Returns the new rate.
 */
function slowDown(state: LearnerState, ctx: ActorContext): number {
  const { learningRate, refusedLearningRateFactor } = ctx.config.learning;
  const lr = Math.max(state.learner.learningRate * refusedLearningRateFactor, learningRate / 1000);
  state.learner.setLearningRate(lr);
  return lr;
}

/** After an exported candidate: back towards the configured learning rate. */
function speedUp(state: LearnerState, ctx: ActorContext): void {
  const { learningRate, refusedLearningRateFactor } = ctx.config.learning;
  const lr = Math.min(state.learner.learningRate / refusedLearningRateFactor, learningRate);
  if (lr !== state.learner.learningRate) state.learner.setLearningRate(lr);
}

/**
 * The held-out episodes (and, when fine-tuning, the rehearsal ones) into the state, after READY:
 * seconds of parsing that a learner thread's start must not wait for.
 */
async function loadData(
  state: Pick<LearnerState, 'heldOut' | 'rehearsal' | 'dataLoaded'>,
  ctx: ActorContext,
  resumed: boolean,
): Promise<void> {
  await new Promise((r) => setImmediate(r));
  state.heldOut = await loadHeldOut(ctx.config).catch((error) => {
    ctx.log.warn({ err: error }, 'held-out set unavailable: versions are not evaluated');
    return [];
  });
  if (resumed)
    state.rehearsal = new Rehearsal(
      await loadRehearsal(ctx.config).catch((error) => {
        ctx.log.warn({ err: error }, 'rehearsal data unavailable: learning without it');
        return [];
      }),
    );
  state.dataLoaded = true;
  ctx.log.info(
    { heldOutEpisodes: state.heldOut.length, rehearsalEpisodes: state.rehearsal?.size ?? 0 },
    'learner data loaded',
  );
}

async function exportNow(state: LearnerState, ctx: ActorContext): Promise<void> {
  await state.loaded;
  const m = state.learner.metrics();
  const signingKey = signingKeyFromEnv();
  try {
    const params = state.average?.mean() ?? state.learner.engine.getParams();
    const snapshots = Math.max(1, state.average?.count ?? 0);
    const report =
      state.heldOut.length > 0
        ? await evaluateParams(params, state.heldOut, ctx.config)
        : undefined;
    const c = report?.confusion;
    if (report && !state.lastHeldOut && state.inService && state.resumedVersion) {
      state.lastHeldOut = await judgeResumed(state, ctx, state.resumedVersion, state.inService);
      state.best = state.lastHeldOut;
    }
    const candidate: HeldOutResult | undefined = report && {
      version: `candidate after ${m.updates} updates`,
      accuracy: report.balancedAccuracy,
      auc: report.auc,
      reward: report.meanReward,
      episodes: report.episodes,
    };
    const forgot =
      candidate && forgetting(state.lastHeldOut, candidate, ctx.config.alerts.maxAccuracyDrop);
    const { exportTolerance, revertOnForgetting } = ctx.config.learning;
    // Against the best version served since the start, so that candidates each a little worse
    // than the one before cannot walk the model down. 1e-9: balanced accuracies are sums of
    // fractions, and 0.835 − 0.825 is 0.010000000000000009 in floating point.
    const bar = state.best;
    const worse = candidate && bar && bar.accuracy - candidate.accuracy > exportTolerance + 1e-9;
    if (worse && bar && state.inService && revertOnForgetting) {
      state.reverted++;
      state.lastExportAt = m.updates;
      state.learner.engine.setParams(state.inService);
      state.average?.clear();
      const lr = slowDown(state, ctx);
      const what = `not exported: after ${m.updates} updates the held-out balanced accuracy is ${candidate.accuracy.toFixed(3)}, ${bar.accuracy.toFixed(3)} for ${bar.version}; learning goes back to the weights in service at learning rate ${lr.toExponential(1)}`;
      if (forgot) {
        state.heldOutAlerts++;
        ctx.log.error({ alert: 'warden_model_degraded', ...forgot, learningRate: lr }, what);
        ctx.send(SYSTEM, forgot);
      } else {
        ctx.log.warn({ candidate, bar, learningRate: lr }, what);
      }
      return;
    }
    const { metadata, path } = await exportModel(
      ctx.config.models.dir,
      params,
      {
        hyperParameters: hyperParameters(ctx.config),
        trainingEpisodes: 0,
        metrics: {
          finalLoss: m.loss,
          averageReward: m.averageReward,
          detectionAccuracy: report?.balancedAccuracy ?? 0,
          falsePositiveRate: c ? c.fp / Math.max(1, c.fp + c.tn) : 0,
          falseNegativeRate: c ? c.fn / Math.max(1, c.fn + c.tp) : 0,
        },
        engine: state.learner.engine.name,
      },
      signingKey ? { signingKey } : {},
    );
    state.exported++;
    state.lastExportAt = m.updates;
    speedUp(state, ctx);
    state.lastExportSnapshots = snapshots;
    const { keepVersions } = ctx.config.models;
    const deleted = pruneVersions(ctx.config.models.dir, keepVersions);
    if (deleted.length > 0) ctx.log.debug({ deleted, keepVersions }, 'old model versions deleted');
    ctx.log.info(
      {
        version: metadata.version,
        updates: m.updates,
        loss: m.loss,
        averageOf: snapshots,
        heldOutBalancedAccuracy: report?.balancedAccuracy,
      },
      'model exported',
    );
    state.inService = params;
    if (candidate) {
      const result: HeldOutResult = { ...candidate, version: metadata.version };
      const alert = forgot && { ...forgot, version: metadata.version };
      state.lastHeldOut = result;
      if (!state.best || result.accuracy > state.best.accuracy) state.best = result;
      if (alert) {
        state.heldOutAlerts++;
        ctx.log.error(
          { alert: 'warden_model_degraded', ...alert },
          `model ${alert.version} forgot: held-out balanced accuracy ${alert.accuracy.toFixed(3)} vs ${alert.previousAccuracy.toFixed(3)} for ${alert.previousVersion}`,
        );
        ctx.send(SYSTEM, alert);
      }
    }
    const published: ModelPublished = { type: 'model-published', metadata, path };
    ctx.send(ANNOUNCE_TO, published);
  } catch (error) {
    // The previous model stays in service (property 15); training goes on.
    state.exportFailures++;
    ctx.log.error({ err: error }, 'model export failed; the previous model stays');
  }
}

/**
 * Learns at the pace of the data: at most updatesPerTransition updates per transition the replay
 * received since the learner started, and at most maxUpdatesPerSecond, so training never takes the
 * cores the decision path needs (measured: unthrottled, it held a whole core of two).
 */
function trainingLoop(
  state: Omit<LearnerState, 'loop'>,
  ctx: ActorContext,
  loop: { stopped: boolean },
  replay: ReplayStorage,
): Promise<void> {
  const startWritten = replay.written;
  return (async () => {
    await state.loaded;
    const startedAt = performance.now();
    let sinceYield = 0;
    while (!loop.stopped) {
      const { updatesPerTransition, maxUpdatesPerSecond, exportEvery, rehearsalShare } =
        ctx.config.learning;
      const online = replay.written - startWritten - (state.rehearsal?.appended ?? 0);
      state.rehearsal?.topUp(replay, online, rehearsalShare);
      const byData = online * updatesPerTransition;
      const byTime = ((performance.now() - startedAt) / 1000) * maxUpdatesPerSecond;
      if (
        state.learner.updates >= Math.min(byData, byTime) &&
        replay.size >= ctx.config.learning.minReplay
      ) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const outcome = await state.learner.update();
      if (outcome.kind === 'waiting') {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const s = state as LearnerState;
      // A recovery restores earlier weights without counting an update: no second snapshot.
      if (outcome.kind === 'updated') snapshot(s, ctx.config.learning);
      if (state.learner.updates - s.lastExportAt >= exportEvery) await exportNow(s, ctx);
      // ORT's run already yields; still give the mailbox a turn now and then.
      if (++sinceYield >= 16) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
  })();
}

/**
 * The learner continues from the latest version in models.dir — the one in service (on a learner
 * host, the one the fleet serves, fetched from the registry by `warden` before the learner
 * starts) — so a restart keeps what was learned and a new leader takes over from the last
 * published model (requirement 7.1). Learning from scratch instead, the first export after a
 * restart replaced a trained model with one 50 s old (npm start: live accuracy 0.805 → 0.705).
 */
function resumeParams(
  ctx: ActorContext,
  dims: number[],
): { version: string; params: QNetParams } | undefined {
  // The same order the inference pool loads in: a latest that cannot be read gives way to the
  // newest version that can, as it does in service.
  for (const version of versionsToTry(ctx.config.models.dir)) {
    try {
      const params = readPolicyParams(readFileSync(modelFile(ctx.config.models.dir, version)));
      if (params.dims.join() !== dims.join() || params.dueling !== ctx.config.learning.dueling) {
        ctx.log.warn(
          { version, dims: params.dims },
          'the model in service has another shape: learning from scratch',
        );
        return undefined;
      }
      ctx.log.info({ version }, 'learning continues from the model in service');
      return { version, params };
    } catch (error) {
      ctx.log.warn({ err: error, version }, 'model unreadable: trying the version before it');
    }
  }
  return undefined;
}

export default defineActor<LearnerMessage, LearnerState>({
  name: 'learner',
  async init(ctx) {
    const buffer = ctx.shared.replay;
    if (!buffer) throw new Error('the learner needs the shared replay storage ("replay")');
    const replay = new ReplayStorage(buffer);
    const dims = [replay.dim, ...ctx.config.learning.hiddenUnits, 6];
    const resumed = resumeParams(ctx, dims);
    const engine = await createEngine(
      resumed?.params ?? initParams(dims, ctx.config.learning.dueling, Date.now() & 0xffff),
      ctx.config,
      ctx.config.learning.engine,
    );
    const learner = new DqnLearner(
      engine,
      hyperParameters(ctx.config),
      sampleOptions(ctx.config),
      replay,
      ctx.log,
    );
    // Fine-tuning a trained version: slowly, and rehearsing the data it learned from.
    if (resumed) {
      const { learningRate, resumeLearningRate } = ctx.config.learning;
      learner.setLearningRate(Math.min(learningRate, resumeLearningRate));
    }
    const partial: Omit<LearnerState, 'loop' | 'loaded'> = {
      learner,
      heldOut: [],
      dataLoaded: false,
      lastHeldOut: undefined,
      best: undefined,
      inService: resumed?.params,
      resumedVersion: resumed?.version,
      heldOutAlerts: 0,
      reverted: 0,
      rehearsal: undefined,
      exported: 0,
      exportFailures: 0,
      lastExportAt: 0,
      average: null,
      lastExportSnapshots: 0,
    };
    const withData = Object.assign(partial, {
      loaded: loadData(partial, ctx, resumed !== undefined),
    });
    const loop = { stopped: false, done: Promise.resolve() };
    loop.done = trainingLoop(withData, ctx, loop, replay);
    ctx.log.info(
      {
        engine: engine.name,
        dims,
        replay: replay.capacity,
        learningRate: learner.learningRate,
      },
      'learner started',
    );
    return Object.assign(withData, { loop });
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case 'episode-finished':
        state.learner.episodeFinished(message.reward);
        return state;
      case 'export-now':
        await exportNow(state, ctx);
        return state;
      default:
        return assertNever(message);
    }
  },
  configure(state, config) {
    state.learner.configure(hyperParameters(config), sampleOptions(config));
    return state;
  },
  stats(state) {
    const m = state.learner.metrics();
    return {
      updates: m.updates,
      loss: Number.isFinite(m.loss) ? m.loss : -1,
      epsilon: m.epsilon,
      averageReward: m.averageReward,
      updatesPerSecond: m.updatesPerSecond,
      samplesPerSecond: m.samplesPerSecond,
      targetSyncs: m.targetSyncs,
      recoveries: m.recoveries,
      learningRate: m.learningRate,
      exported: state.exported,
      lastExportSnapshots: state.lastExportSnapshots,
      exportFailures: state.exportFailures,
      heldOutAccuracy: state.lastHeldOut?.accuracy ?? -1,
      heldOutAuc: state.lastHeldOut?.auc ?? -1,
      heldOutAlerts: state.heldOutAlerts,
      reverted: state.reverted,
      rehearsed: state.rehearsal?.appended ?? 0,
      rehearsalEpisodes: state.rehearsal?.size ?? 0,
      /** 1 once the held-out and rehearsal episodes are loaded (they load after start). */
      dataLoaded: state.dataLoaded ? 1 : 0,
    };
  },
  async stop(state) {
    state.loop.stopped = true;
    await state.loop.done;
    state.learner.engine.dispose();
  },
});
