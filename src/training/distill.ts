// Distillation (`warden train --members K`): one network of the usual shape learns the mean
// Q-values of several trained networks (its teachers) on the states of the training traces.
// The mean of independently trained DQNs ranks files better than any one of them, and the
// online learner, the inference pool and the export all keep working on a single network.
//
// Each sample is one (state, action) with the teachers' mean Q(state, action) as its target; the
// DQN engine learns it as a terminal transition whose return is that target (no bootstrap), so
// the same engine, loss and optimizer serve both kinds of training.

import { MAX_ISOLATION, StateAccumulator } from '../actors/adapter/state-vector.ts';
import type { StageConfig } from '../actors/episodes/two-stage.ts';
import { initParams, type QNetParams, seededRandom } from '../actors/learner/q-network.ts';
import type { WardenConfig } from '../config/schema.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import { InvalidInputError } from '../runtime/errors.ts';
import { createSampleBatch } from '../runtime/shared/replay-storage.ts';
import { createEngine, type EngineChoice } from './train.ts';

const ACTION_COUNT = 6;

export interface DistillationStates {
  /** n × dim, row-major. */
  readonly states: Float32Array;
  readonly n: number;
}

/**
 * Every prefix of every trace (up to the horizon) as a stage-1 state at isolation 0 — the states
 * the policy meets most — and once more under a random stage, isolation level and cleaning, so
 * the student also follows its teachers in stage 2 and after it raised isolation.
 */
export function distillationStates(
  traces: readonly RecordedTrace[],
  cfg: StageConfig,
  seed: number,
): DistillationStates {
  const rand = seededRandom(seed);
  let n = 0;
  for (const t of traces) n += 2 * Math.min(t.events.length, cfg.horizon);
  const states = new Float32Array(n * cfg.dim);
  let row = 0;
  for (const t of traces) {
    const acc = new StateAccumulator(cfg.dim, cfg.horizon);
    for (const e of t.events.slice(0, cfg.horizon)) {
      acc.add(e);
      acc.write(states, row++ * cfg.dim, 1, 0, false);
      const stage = rand() < 0.5 ? 1 : 2;
      // Levels 0 … MAX_ISOLATION, the ones a stage can reach.
      const isolation = Math.floor(rand() * (MAX_ISOLATION + 1));
      acc.write(states, row++ * cfg.dim, stage, isolation, stage === 2 && rand() < 0.5);
    }
  }
  return { states, n };
}

export interface DistillOptions {
  readonly teachers: readonly QNetParams[];
  readonly traces: readonly RecordedTrace[];
  readonly config: WardenConfig;
  readonly stage: StageConfig;
  /** Passes over all (state, action) samples; default 3. */
  readonly epochs?: number;
  /** The learning rate is multiplied by this after each epoch; default 0.3. */
  readonly decay?: number;
  readonly seed?: number;
  readonly engine?: EngineChoice;
  readonly onEpoch?: (epoch: number, loss: number) => void;
}

export interface DistillResult {
  readonly params: QNetParams;
  readonly states: number;
  /** Mean loss of the last epoch. */
  readonly loss: number;
  readonly seconds: number;
}

/** The teachers' mean Q-values for every state (n × 6). */
export async function meanQ(
  teachers: readonly QNetParams[],
  config: WardenConfig,
  { states, n }: DistillationStates,
  engineChoice: EngineChoice = 'auto',
): Promise<Float32Array> {
  const dim = states.length / Math.max(1, n);
  const mean = new Float32Array(n * ACTION_COUNT);
  const chunk = 8192;
  for (const teacher of teachers) {
    const engine = await createEngine(teacher, config, engineChoice);
    for (let from = 0; from < n; from += chunk) {
      const rows = Math.min(chunk, n - from);
      const q = await engine.predict(states.subarray(from * dim, (from + rows) * dim), rows);
      for (let i = 0; i < rows * ACTION_COUNT; i++)
        mean[from * ACTION_COUNT + i]! += q[i]! / teachers.length;
    }
    engine.dispose();
  }
  return mean;
}

export async function distill(o: DistillOptions): Promise<DistillResult> {
  const started = performance.now();
  const seed = o.seed ?? 1;
  const { config } = o;
  const dim = o.stage.dim;
  const data = distillationStates(o.traces, o.stage, seed);
  if (data.n === 0)
    throw new InvalidInputError('distillation needs traces with at least one event');
  const targets = await meanQ(o.teachers, config, data, o.engine);
  const dims = [dim, ...config.learning.hiddenUnits, ACTION_COUNT];
  // Every sample is terminal, so the bootstrapped term is multiplied by 0: without double DQN the
  // engine skips one of its two forward passes over the next states, with the same weights to the
  // bit (80,000 states, one epoch: 4.9–5.1 s against 5.9–6.8 s).
  const engine = await createEngine(
    initParams(dims, config.learning.dueling, seed),
    { ...config, learning: { ...config.learning, doubleDqn: false } },
    o.engine,
  );
  const size = 256;
  const batch = createSampleBatch(size, dim);
  batch.size = size;
  // Every sample is terminal: its target is its return, with nothing bootstrapped.
  batch.dones.fill(1);
  batch.weights.fill(1);
  const rand = seededRandom(seed + 1);
  const samples = data.n * ACTION_COUNT;
  const epochs = Math.max(1, Math.floor(o.epochs ?? 3));
  const decay = o.decay ?? 0.3;
  let loss = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    engine.setLearningRate(config.learning.learningRate * decay ** epoch);
    let sum = 0;
    const steps = Math.max(1, Math.ceil(samples / size));
    for (let s = 0; s < steps; s++) {
      for (let j = 0; j < size; j++) {
        const sample = Math.floor(rand() * samples);
        const row = Math.floor(sample / ACTION_COUNT);
        batch.states.set(data.states.subarray(row * dim, (row + 1) * dim), j * dim);
        batch.actions[j] = sample % ACTION_COUNT;
        batch.returns[j] = targets[sample]!;
      }
      // Unused with done = 1, but the step reads a next state per row.
      batch.nextStates.set(batch.states);
      sum += (await engine.step(batch)).loss;
    }
    loss = sum / steps;
    o.onEpoch?.(epoch + 1, loss);
  }
  const params = engine.getParams();
  engine.dispose();
  return { params, states: data.n, loss, seconds: (performance.now() - started) / 1000 };
}
