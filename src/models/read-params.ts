// Reads a Warden-exported policy model's weights back (initializers w0, w1, …), so training can
// continue from a deployed model instead of starting over (requirement 7.1, property 29).

import protobuf from 'protobufjs';
import type { QNetParams } from '../actors/learner/q-network.ts';
import { ONNX_PROTO } from '../onnx/builder.ts';
import { ModelNotFoundError } from './store.ts';

interface Initializer {
  name: string;
  dims: number[];
  rawData?: Uint8Array;
  floatData?: number[];
}

export function readPolicyParams(bytes: Uint8Array): QNetParams {
  const Model = protobuf.loadSync(ONNX_PROTO).lookupType('onnx.ModelProto');
  const model = Model.toObject(Model.decode(bytes), { longs: Number, bytes: Uint8Array }) as {
    graph?: { initializer?: Initializer[] };
  };
  const inits = (model.graph?.initializer ?? [])
    .filter((t) => /^w\d+$/.test(t.name))
    .sort((a, b) => Number(a.name.slice(1)) - Number(b.name.slice(1)));
  if (inits.length < 2 || inits.length % 2 !== 0) {
    throw new ModelNotFoundError(
      'model has no Warden weight initializers (w0, w1, …): only Warden exports can be resumed',
    );
  }
  const tensors = inits.map((t) => {
    if (t.rawData && t.rawData.byteLength > 0) {
      const copy = new Uint8Array(t.rawData);
      return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
    }
    return Float32Array.from(t.floatData ?? []);
  });
  const shapes = inits.map((t) => t.dims);
  const last = shapes.at(-2)!;
  const dueling =
    last.length === 2 && last[1] === 1 && shapes.length >= 4 && shapes.at(-4)![1]! > 1;
  const layerShapes = dueling ? shapes.slice(0, -2) : shapes;
  const dims = [
    layerShapes[0]![0]!,
    ...layerShapes.filter((_, i) => i % 2 === 0).map((s) => s[1]!),
  ];
  return { dims, dueling, tensors };
}
