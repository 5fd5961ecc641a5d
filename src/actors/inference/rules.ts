// The rule-based policy: what decides when no valid model is loaded (requirement 4.4), and the
// baseline `warden eval` compares the agent with. Rules read the adapter's state features
// (state-vector.ts) and are tried top to bottom; the first that holds decides.
//
//   #  condition (feature values are the adapter's [0, 1] scalings)          action
//   1  code_injection > 0                                                    TERMINATE
//   2  privilege_escalation > 0 and (registry_modification > 0
//        or child_processes > 0)                                             QUARANTINE
//   3  api_crypto ≥ 0.5 and file_writes > 0 (bulk encryption of files)      QUARANTINE
//   4  registry_modification ≥ 0.3 and network_connections > 0              QUARANTINE
//   5  network_connections > 0 and child_processes > 0 and isolation = 0   RAISE_ISOLATION
//   6  progress ≥ 1 (the stage's horizon is reached)                        RELEASE
//   7  otherwise                                                            CONTINUE

import { ACTIONS, type ActionId } from '../../messages/action.ts';
import { featureNames } from '../adapter/state-vector.ts';

export interface RuleDecision {
  readonly action: ActionId;
  readonly rule: number;
  /** Pseudo Q-values: 1 for the chosen action, 0 elsewhere (so argmax agrees). */
  readonly qValues: Float32Array;
  /** How strongly the rule's evidence holds, 0–1. */
  readonly confidence: number;
}

export function rulePolicy(dim: number): (state: Float32Array, offset?: number) => RuleDecision {
  const names = featureNames(dim);
  const at = (n: string) => names.indexOf(n);
  const f = {
    injection: at('code_injection'),
    privilege: at('privilege_escalation'),
    registry: at('registry_modification'),
    children: at('child_processes'),
    crypto: at('api_crypto'),
    writes: at('file_writes'),
    network: at('network_connections'),
    isolation: at('isolation'),
    progress: at('progress'),
  };
  return (s, o = 0) => {
    const v = (i: number) => s[o + i]!;
    const decide = (action: ActionId, rule: number, confidence: number): RuleDecision => {
      const qValues = new Float32Array(6);
      qValues[action] = 1;
      return { action, rule, qValues, confidence };
    };
    if (v(f.injection) > 0) return decide(ACTIONS.TERMINATE, 1, 0.9);
    if (v(f.privilege) > 0 && (v(f.registry) > 0 || v(f.children) > 0))
      return decide(ACTIONS.QUARANTINE, 2, 0.8);
    if (v(f.crypto) >= 0.5 && v(f.writes) > 0) return decide(ACTIONS.QUARANTINE, 3, 0.7);
    if (v(f.registry) >= 0.3 && v(f.network) > 0) return decide(ACTIONS.QUARANTINE, 4, 0.6);
    if (v(f.network) > 0 && v(f.children) > 0 && v(f.isolation) === 0)
      return decide(ACTIONS.RAISE_ISOLATION, 5, 0.5);
    if (v(f.progress) >= 1) return decide(ACTIONS.RELEASE, 6, 0.5);
    return decide(ACTIONS.CONTINUE, 7, 0.5);
  };
}
