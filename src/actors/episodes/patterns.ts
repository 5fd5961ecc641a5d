// What a learned attack pattern is (requirement 6.1): when a stage's malicious verdict is
// confirmed by the sandbox outcome (the ground truth is malicious), the state at the decision,
// the action, the reward and the policy's confidence form one pattern. Its attack type is the
// sandbox's family or signature label when it reports one, otherwise a behaviour class read from
// the state, first match wins:
//
//   class                  when (adapter features, state-vector.ts)
//   injection              code_injection > 0
//   privilege-escalation   privilege_escalation > 0
//   ransomware             api_crypto ≥ 0.5 and (file_writes > 0 or file_deletes > 0)
//   persistence            registry_modification > 0 or api_services > 0
//   network                network_connections > 0 or bytes_sent > 0
//   file-tampering         file_writes > 0 or file_deletes > 0
//   unknown                otherwise

import { createHash } from 'node:crypto';
import type { ActionId } from '../../messages/action.ts';
import type { Stage } from '../../messages/episode.ts';
import type { AttackPattern, BehaviourClass } from '../../messages/pattern.ts';
import { featureNames } from '../adapter/state-vector.ts';

export function behaviourClass(state: ArrayLike<number>): BehaviourClass {
  const names = featureNames(state.length);
  const f = (n: string) => state[names.indexOf(n)] ?? 0;
  if (f('code_injection') > 0) return 'injection';
  if (f('privilege_escalation') > 0) return 'privilege-escalation';
  if (f('api_crypto') >= 0.5 && (f('file_writes') > 0 || f('file_deletes') > 0))
    return 'ransomware';
  if (f('registry_modification') > 0 || f('api_services') > 0) return 'persistence';
  if (f('network_connections') > 0 || f('bytes_sent') > 0) return 'network';
  if (f('file_writes') > 0 || f('file_deletes') > 0) return 'file-tampering';
  return 'unknown';
}

export interface ConfirmedDecision {
  readonly episodeId: string;
  readonly stage: Stage;
  readonly state: ArrayLike<number>;
  readonly action: ActionId;
  readonly reward: number;
  readonly confidence: number;
  readonly modelVersion: string;
  readonly family: string | null;
  readonly timestamp: number;
}

/**
 * The pattern of a confirmed malicious verdict; the id is stable, so a re-sent outcome is stored
 * once, and holds the state, so another run under a reused episode id is stored too.
 */
export function learnedPattern(d: ConfirmedDecision): AttackPattern {
  const features = Array.from(d.state, (v) => Math.round(v * 1e6) / 1e6);
  const patternId = createHash('sha256')
    .update(`${d.episodeId}/${d.stage}/${d.modelVersion}/${features.join(',')}`)
    .digest('hex')
    .slice(0, 32);
  return {
    type: 'attack-pattern',
    patternId,
    features,
    action: d.action,
    reward: d.reward,
    attackType:
      d.family && d.family.trim() !== '' ? d.family.trim().slice(0, 128) : behaviourClass(d.state),
    confidence: Math.min(1, Math.max(0, d.confidence)),
    timestamp: d.timestamp,
    modelVersion: d.modelVersion,
    episodeId: d.episodeId,
    stage: d.stage,
  };
}
