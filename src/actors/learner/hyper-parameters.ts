// The learner's hyper-parameters as derived from configuration, and the schedules they drive.
// Pure functions: the learner actor calls them on every (re)configure.

import type { WardenConfig } from '../../config/schema.ts';
import type { HyperParameters } from '../../messages/model.ts';
import type { SampleOptions } from '../../runtime/shared/replay-storage.ts';

export function hyperParameters(config: WardenConfig): HyperParameters {
  const l = config.learning;
  return {
    learningRate: l.learningRate,
    gamma: l.gamma,
    epsilonStart: l.epsilonStart,
    epsilonEnd: l.epsilonEnd,
    epsilonDecay: l.epsilonDecay,
    batchSize: l.batchSize,
    minReplay: l.minReplay,
    targetSyncEvery: l.targetSyncEvery,
    tau: l.tau,
    loss: l.loss,
    doubleDqn: l.doubleDqn,
    dueling: l.dueling,
    gradClip: l.gradClip,
    hiddenUnits: [...l.hiddenUnits],
  };
}

/** Epsilon after `episodes` completed episodes: start · decay^episodes, floored at end. */
export function epsilonAt(episodes: number, hp: HyperParameters): number {
  return Math.max(hp.epsilonEnd, hp.epsilonStart * hp.epsilonDecay ** episodes);
}

/** How the learner samples the replay under this configuration. */
export function sampleOptions(config: WardenConfig): SampleOptions {
  return {
    prioritized: config.replay.prioritized,
    nStep: config.replay.nStep,
    gamma: config.learning.gamma,
    alpha: config.replay.alpha,
    beta: config.replay.beta,
  };
}
