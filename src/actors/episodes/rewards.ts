// Rewards (DESIGN §1; seed 2.4, 2.5): from configuration, with signs fixed by the seed — a
// correct detection or release earns, a false positive or false negative costs (FN more by
// default), each observed event and isolation raise costs a little, human review costs more.

import {
  ACTIONS,
  type ActionId,
  MALICIOUS_VERDICTS,
  STAGE_ENDING_ACTIONS,
} from '../../messages/action.ts';
import type { Label } from '../../messages/episode.ts';

export interface RewardTable {
  readonly truePositive: number;
  readonly trueNegative: number;
  readonly falsePositive: number;
  readonly falseNegative: number;
  readonly perEvent: number;
  readonly isolation: number;
  readonly review: number;
  readonly unapplied: number;
}

/** What the sandbox said about one action (property 22): confirmed, applied, or it failed. */
export type Feedback = 'applied' | 'not-applied' | 'failed';

export type Verdict = 'malicious' | 'benign' | 'review';

export function verdictOf(action: ActionId): Verdict | undefined {
  if (MALICIOUS_VERDICTS.includes(action)) return 'malicious';
  if (action === ACTIONS.RELEASE) return 'benign';
  if (action === ACTIONS.REQUEST_REVIEW) return 'review';
  return undefined;
}

export const endsStage = (action: ActionId) => STAGE_ENDING_ACTIONS.includes(action);

/**
 * What the verdict earns once the truth is known. Review costs its price and earns nothing
 * else: the human makes the call, so the agent is not credited for it (otherwise reviewing
 * everything at once would beat deciding). An unknown truth earns nothing either way.
 */
export function verdictReward(verdict: Verdict, truth: Label, r: RewardTable): number {
  if (verdict === 'review') return r.review;
  if (truth === 'unknown') return 0;
  if (verdict === 'malicious') return truth === 'malicious' ? r.truePositive : r.falsePositive;
  return truth === 'benign' ? r.trueNegative : r.falseNegative;
}

/** Cost of taking `action` after one observed event (before any verdict reward). */
export function stepCost(action: ActionId, r: RewardTable): number {
  return r.perEvent + (action === ACTIONS.RAISE_ISOLATION ? r.isolation : 0);
}

/**
 * What a step's feedback adds (property 22: every feedback yields a reward). Continuing needs
 * nothing applied; any other action the sandbox did not apply — refused, impossible, or failed
 * after every retry — costs `unapplied`, since it did not contain anything.
 */
export function feedbackReward(action: ActionId, feedback: Feedback, r: RewardTable): number {
  if (action === ACTIONS.CONTINUE || feedback === 'applied') return 0;
  return r.unapplied;
}
