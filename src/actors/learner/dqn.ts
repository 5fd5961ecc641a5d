// The DQN learner's logic, independent of threads: samples the replay, runs an engine step,
// syncs the target network, recovers from NaN or exploding losses, and keeps training metrics.
// Updates start once the replay holds minReplay transitions (property 7); the target is synced
// exactly every targetSyncEvery updates (property 8), or softly every update when tau > 0.

import type { HyperParameters } from '../../messages/model.ts';
import {
  createSampleBatch,
  type ReplayStorage,
  type SampleBatch,
  type SampleOptions,
} from '../../runtime/shared/replay-storage.ts';
import type { DqnEngine } from './engine.ts';
import { epsilonAt } from './hyper-parameters.ts';
import { paramsFinite, type QNetParams } from './q-network.ts';

export interface TrainingMetrics {
  readonly updates: number;
  readonly targetSyncs: number;
  readonly loss: number;
  readonly epsilon: number;
  readonly averageReward: number;
  readonly updatesPerSecond: number;
  readonly samplesPerSecond: number;
  readonly recoveries: number;
  readonly learningRate: number;
}

export type UpdateOutcome =
  | { readonly kind: 'waiting'; readonly replaySize: number }
  | { readonly kind: 'updated'; readonly loss: number; readonly targetSynced: boolean }
  | { readonly kind: 'recovered'; readonly loss: number; readonly learningRate: number };

export interface DqnLogger {
  warn(fields: object, message: string): void;
}

/** A loss this many times the running average (or non-finite) counts as an explosion. */
const EXPLOSION_FACTOR = 1e3;
const CHECKPOINT_EVERY = 100;

export class DqnLearner {
  readonly engine: DqnEngine;
  #hp: HyperParameters;
  #sample: SampleOptions;
  readonly #replay: ReplayStorage;
  readonly #batch: SampleBatch;
  readonly #log: DqnLogger;
  #updates = 0;
  #targetSyncs = 0;
  #recoveries = 0;
  #loss = Number.NaN;
  #lossAverage = Number.NaN;
  #lr: number;
  #episodes = 0;
  #rewardWindow: number[] = [];
  #lastGood: QNetParams;
  #rateWindowStart = performance.now();
  #rateWindowUpdates = 0;
  #updatesPerSecond = 0;

  constructor(
    engine: DqnEngine,
    hp: HyperParameters,
    sample: SampleOptions,
    replay: ReplayStorage,
    log: DqnLogger,
  ) {
    this.engine = engine;
    this.#hp = hp;
    this.#sample = sample;
    this.#replay = replay;
    this.#batch = createSampleBatch(Math.max(hp.batchSize, 1), replay.dim);
    this.#log = log;
    this.#lr = hp.learningRate;
    this.#lastGood = engine.getParams();
  }

  get updates(): number {
    return this.#updates;
  }

  get epsilon(): number {
    return epsilonAt(this.#episodes, this.#hp);
  }

  /** Applies new hyper-parameters (hot reload); the network shape never changes at run time. */
  configure(hp: HyperParameters, sample: SampleOptions): void {
    // Only a changed configured rate resets it: the actor may have slowed learning down since.
    const changed = hp.learningRate !== this.#hp.learningRate;
    this.#hp = hp;
    this.#sample = sample;
    if (changed) this.setLearningRate(hp.learningRate);
  }

  get learningRate(): number {
    return this.#lr;
  }

  /** Changes the learning rate from here on (the learner actor slows down after a refused candidate). */
  setLearningRate(lr: number): void {
    this.#lr = lr;
    this.engine.setLearningRate(lr);
  }

  /** Records a finished episode's total reward (average reward metric, epsilon decay). */
  episodeFinished(totalReward: number): void {
    this.#episodes++;
    this.#rewardWindow.push(totalReward);
    if (this.#rewardWindow.length > 100) this.#rewardWindow.shift();
  }

  async update(): Promise<UpdateOutcome> {
    if (this.#replay.size < this.#hp.minReplay)
      return { kind: 'waiting', replaySize: this.#replay.size };
    const n = this.#replay.sample(this.#hp.batchSize, this.#sample, this.#batch);
    if (n === 0) return { kind: 'waiting', replaySize: this.#replay.size };
    const { loss, tdErrors } = await this.engine.step(this.#batch);
    const exploded =
      !Number.isFinite(loss) ||
      (Number.isFinite(this.#lossAverage) &&
        this.#lossAverage > 0 &&
        loss > EXPLOSION_FACTOR * Math.max(this.#lossAverage, 1e-3));
    if (exploded) {
      // Roll back to the last good weights and learn more carefully from here.
      this.#recoveries++;
      this.#lr = Math.max(this.#lr / 2, 1e-7);
      this.engine.setParams(this.#lastGood);
      this.engine.setLearningRate(this.#lr);
      this.#log.warn(
        { loss, learningRate: this.#lr, updates: this.#updates },
        'loss exploded or went NaN: restored the last good weights and halved the learning rate',
      );
      return { kind: 'recovered', loss, learningRate: this.#lr };
    }
    if (this.#sample.prioritized)
      this.#replay.updatePriorities(
        this.#batch.indices.subarray(0, n),
        tdErrors,
        this.#sample.alpha,
      );
    this.#loss = loss;
    this.#lossAverage = Number.isFinite(this.#lossAverage)
      ? 0.99 * this.#lossAverage + 0.01 * loss
      : loss;
    this.#updates++;
    this.#rateWindowUpdates++;
    let targetSynced = false;
    if (this.#hp.tau > 0) {
      this.engine.syncTarget(this.#hp.tau);
    } else if (this.#updates % this.#hp.targetSyncEvery === 0) {
      this.engine.syncTarget(1);
      this.#targetSyncs++;
      targetSynced = true;
    }
    if (this.#updates % CHECKPOINT_EVERY === 0) {
      // Weights are checked here, not every step: a full scan costs about as much as an update.
      const params = this.engine.getParams();
      if (paramsFinite(params)) this.#lastGood = params;
    }
    const now = performance.now();
    if (now - this.#rateWindowStart >= 1000) {
      this.#updatesPerSecond = (this.#rateWindowUpdates * 1000) / (now - this.#rateWindowStart);
      this.#rateWindowStart = now;
      this.#rateWindowUpdates = 0;
    }
    return { kind: 'updated', loss, targetSynced };
  }

  metrics(): TrainingMetrics {
    const rewards = this.#rewardWindow;
    return {
      updates: this.#updates,
      targetSyncs: this.#targetSyncs,
      loss: this.#loss,
      epsilon: this.epsilon,
      averageReward: rewards.length ? rewards.reduce((a, b) => a + b, 0) / rewards.length : 0,
      updatesPerSecond: this.#updatesPerSecond,
      samplesPerSecond: this.#updatesPerSecond * this.#hp.batchSize,
      recoveries: this.#recoveries,
      learningRate: this.#lr,
    };
  }
}
