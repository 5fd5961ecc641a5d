// The policy network as a standalone ONNX model: input `state` [N, dim], output `q_values`
// [N, actions], weights as initializers — the names the seed's PyTorch export uses.

import { type QNetParams, tensorShapes } from '../actors/learner/q-network.ts';
import { GraphBuilder } from '../onnx/builder.ts';

export function buildPolicyModel(
  params: QNetParams,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const g = new GraphBuilder();
  const layers = params.dims.length - 1;
  const shapes = tensorShapes(params.dims, params.dueling);
  const names = params.tensors.map((t, i) => g.constant(`w${i}`, t, shapes[i]!));
  let h = g.input('state', ['N', params.dims[0]!]);
  let lastHidden = h;
  for (let l = 0; l < layers; l++) {
    if (l === layers - 1) lastHidden = h;
    const z = g.op('Gemm', [h, names[2 * l]!, names[2 * l + 1]!]);
    h = l < layers - 1 ? g.op('Relu', [z]) : z;
  }
  if (params.dueling) {
    const v = g.op('Gemm', [lastHidden, names[2 * layers]!, names[2 * layers + 1]!]);
    const mean = g.op('ReduceMean', [h], { axes: { ints: [1] }, keepdims: 1 });
    h = g.op('Add', [v, g.op('Sub', [h, mean])]);
  }
  g.op('Identity', [h], {}, ['q_values']);
  g.output('q_values', ['N', params.dims.at(-1)!]);
  return g.build('warden_dqn_policy', metadata);
}
