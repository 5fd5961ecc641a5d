// The full DQN update as the learner actor runs it (DqnLearner: sample, targets, loss, backward,
// optimizer, target sync), timed update by update. Also the entry of a worker thread that times
// the ONNX Runtime engine on a thread of its own, as Warden runs the learner (runtime.placement
// gives it one), on the bench's replay storage (shared memory).

import { DqnLearner } from '../src/actors/learner/dqn.ts';
import { ADAM, type DqnEngine } from '../src/actors/learner/engine.ts';
import { OrtEngine } from '../src/actors/learner/ort-engine.ts';
import { initParams } from '../src/actors/learner/q-network.ts';
import type { HyperParameters } from '../src/messages/model.ts';
import { ReplayStorage } from '../src/runtime/shared/replay-storage.ts';
import { summarize } from './lib.ts';

export const DIMS = [64, 256, 256, 6];

export const hp = (batchSize: number): HyperParameters => ({
  learningRate: 1e-3,
  gamma: 0.99,
  epsilonStart: 1,
  epsilonEnd: 0.05,
  epsilonDecay: 0.995,
  batchSize,
  minReplay: 64,
  targetSyncEvery: 1000,
  tau: 0,
  loss: 'huber',
  doubleDqn: true,
  dueling: false,
  gradClip: 10,
  hiddenUnits: [256, 256],
});

export async function measureLearner(
  engine: DqnEngine,
  storage: ReplayStorage,
  batch: number,
  seconds: number,
) {
  const learner = new DqnLearner(
    engine,
    hp(batch),
    { prioritized: false, nStep: 3, gamma: 0.99, alpha: 0.6, beta: 0.4 },
    storage,
    { warn: () => undefined },
  );
  for (let i = 0; i < 20; i++) await learner.update();
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await learner.update();
    lat.push((performance.now() - t0) * 1000);
  }
  const total = lat.reduce((a, b) => a + b, 0) / 1e6;
  return { samplesPerSecond: (lat.length * batch) / total, latency: summarize(lat) };
}

export interface OrtThreadInit {
  readonly replay: SharedArrayBuffer;
  readonly batch: number;
  readonly seconds: number;
  readonly seed: number;
}

/** Worker entry: the ORT engine's full updates on this thread; posts the result to the parent. */
export async function main(init: OrtThreadInit): Promise<void> {
  const { parentPort } = await import('node:worker_threads');
  const engine = await OrtEngine.create(initParams(DIMS, false, init.seed), {
    learningRate: 1e-3,
    loss: 'huber',
    doubleDqn: true,
    gradClip: 10,
    adam: ADAM,
  });
  const result = await measureLearner(
    engine,
    new ReplayStorage(init.replay, init.seed),
    init.batch,
    init.seconds,
  );
  engine.dispose();
  parentPort!.postMessage(result);
}
