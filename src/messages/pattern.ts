// A learned attack pattern (seed 2.3, requirement 6.2) as stored for other detection systems.

import type { ActionId } from './action.ts';
import type { Stage } from './episode.ts';

/** Behaviour-based classes used when the sandbox reports no family or signature. */
export const BEHAVIOUR_CLASSES = [
  'injection',
  'persistence',
  'privilege-escalation',
  'network',
  'file-tampering',
  'ransomware',
  'unknown',
] as const;
export type BehaviourClass = (typeof BEHAVIOUR_CLASSES)[number];

export interface AttackPattern {
  readonly type: 'attack-pattern';
  /** Idempotency key: the same pattern written twice is stored once. */
  readonly patternId: string;
  readonly features: readonly number[];
  readonly action: ActionId;
  readonly reward: number;
  /** The sandbox's family/signature label, or a BehaviourClass. */
  readonly attackType: string;
  readonly confidence: number;
  readonly timestamp: number;
  readonly modelVersion: string;
  readonly episodeId: string;
  readonly stage: Stage;
}
