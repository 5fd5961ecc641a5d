// What a DQN training engine offers the learner. Engines differ in speed, never in maths:
// TensorFlow.js (tfjs-engine.ts) is the reference every other engine is tested against.

import type { SampleBatch } from '../../runtime/shared/replay-storage.ts';
import type { QNetParams } from './q-network.ts';

export interface EngineOptions {
  readonly learningRate: number;
  readonly loss: 'mse' | 'huber';
  readonly doubleDqn: boolean;
  /** Global gradient-norm clip; 0 disables. */
  readonly gradClip: number;
  readonly adam: { readonly beta1: number; readonly beta2: number; readonly epsilon: number };
}

export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

export interface StepResult {
  /** Weighted mean loss of the batch (Huber with δ = 1, or ½·MSE). */
  readonly loss: number;
  /** |TD error| per row, for prioritized replay. */
  readonly tdErrors: Float32Array;
}

export interface DqnEngine {
  readonly name: string;
  /**
   * One update: targets y = R + γⁿ·(1 − done)·Q_target(s′, a*) where a* = argmax Q_policy(s′)
   * (double DQN) or argmax Q_target(s′); loss on Q_policy(s, a); gradients clipped; Adam.
   */
  step(batch: SampleBatch): Promise<StepResult>;
  /** Policy Q-values for n states. */
  predict(states: Float32Array, n: number): Promise<Float32Array>;
  /** Copies policy → target (tau = 1) or blends target ← tau·policy + (1 − tau)·target. */
  syncTarget(tau: number): void;
  getParams(): QNetParams;
  /** Replaces policy and target weights and resets the optimizer (restore after a bad step). */
  setParams(params: QNetParams): void;
  setLearningRate(lr: number): void;
  dispose(): void;
}
