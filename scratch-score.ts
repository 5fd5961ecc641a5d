import { readFileSync } from 'node:fs';
import { StateAccumulator } from './src/actors/adapter/state-vector.ts';
import { forward } from './src/actors/learner/q-network.ts';
import { loadTraces } from './src/data/load-traces.ts';
import { splitTraces } from './src/data/split.ts';
import { readPolicyParams } from './src/models/read-params.ts';
import { auc } from './src/training/metrics.ts';

const params = readPolicyParams(
  readFileSync(process.argv[2] ?? 'data/starter-model/drl_agent_v1795714602354.onnx'),
);
const test = splitTraces(await loadTraces('data/oliveira-balanced/api_calls.csv'), 'test');
const S: Record<string, number[]> = { max: [], last: [], mean: [], full100last: [] };
const truth: boolean[] = [];
let calls = 0;
for (const t of test) {
  if (t.episode.label === 'unknown') continue;
  truth.push(t.episode.label === 'malicious');
  const acc = new StateAccumulator(64, 100);
  let max = -Infinity,
    last = 0,
    sum = 0,
    n = 0,
    decided = false;
  for (let i = 0; i < Math.min(100, t.events.length); i++) {
    acc.add(t.events[i]!);
    const q = forward(params, acc.vector(1, 0, false), 1);
    const m = Math.max(q[2]!, q[3]!) - q[5]!;
    let a = 0;
    for (let k = 1; k < 6; k++) if (q[k]! > q[a]!) a = k;
    if (!decided) {
      max = Math.max(max, m);
      last = m;
      sum += m;
      n++;
    }
    if (!decided && a >= 2) {
      decided = true;
      calls += i + 1;
    }
  }
  if (!decided) calls += Math.min(100, t.events.length);
  S.max!.push(max);
  S.last!.push(last);
  S.mean!.push(sum / n);
}
for (const [k, v] of Object.entries(S)) if (v.length) console.log(k, auc(v, truth).toFixed(4));
console.log('calls', calls / truth.length);
