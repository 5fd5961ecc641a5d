// Hindsight verdicts: once a stage's truth is known, every state the agent saw tells what each
// verdict would have earned there, though the agent took only one action in it. Each such
// counterfactual is a one-step, terminal transition (a verdict ends the stage), so it needs no
// next state and its return is exact. `warden train` adds them for every step of a recorded
// trace (training/train.ts); the episodes actor adds them online for a spread of the states of a
// labelled stage 1 (learning.hindsightStates). Without them the replay holds a verdict only where
// the agent gave one, and learning pulls the other verdicts' values wherever the network drifts:
// online, every candidate fine-tuned from the starter model lost 10–19 points of held-out
// balanced accuracy and was refused.

import { ACTIONS, type ActionId } from '../../messages/action.ts';
import type { Label, Stage } from '../../messages/episode.ts';
import type { Experience } from '../../messages/experience.ts';
import { type RewardTable, stepCost, verdictOf, verdictReward } from './rewards.ts';

/** The actions that end a stage with a verdict. */
export const VERDICT_ACTIONS: readonly ActionId[] = [
  ACTIONS.TERMINATE,
  ACTIONS.QUARANTINE,
  ACTIONS.REQUEST_REVIEW,
  ACTIONS.RELEASE,
];

/** What `action` (a verdict) taken in `state` would have earned, as a terminal transition. */
export function verdictTransition(
  state: Float32Array,
  action: ActionId,
  truth: Label,
  r: RewardTable,
  episode: number,
  stage: Stage,
): Experience {
  const verdict = verdictOf(action);
  if (!verdict) throw new RangeError(`action ${action} is not a verdict`);
  return {
    state,
    nextState: state,
    action,
    reward: stepCost(action, r) + verdictReward(verdict, truth, r),
    done: true,
    episode,
    stage,
  };
}

/**
 * Up to `count` of `n` indices, evenly spread and always including the first and the last
 * (the state the agent decided in), in increasing order.
 */
export function spreadIndices(n: number, count: number): number[] {
  const k = Math.min(n, Math.max(0, Math.floor(count)));
  if (k === 0) return [];
  if (k === 1) return [n - 1];
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const index = Math.round((i * (n - 1)) / (k - 1));
    if (out.at(-1) !== index) out.push(index);
  }
  return out;
}

/**
 * Every verdict at a spread of `states` (spreadIndices), for a stage whose truth is known: the
 * transitions the episodes actor adds to the replay beside the ones the agent played.
 */
export function hindsightVerdicts(
  states: readonly Float32Array[],
  truth: Label,
  r: RewardTable,
  count: number,
  episode: number,
  stage: Stage,
): Experience[] {
  if (truth === 'unknown') return [];
  return spreadIndices(states.length, count).flatMap((i) =>
    VERDICT_ACTIONS.map((action) =>
      verdictTransition(states[i]!, action, truth, r, episode, stage),
    ),
  );
}
