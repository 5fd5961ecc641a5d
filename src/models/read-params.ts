// Reads a Warden-exported policy model's weights back (initializers w0, w1, …), so training can
// continue from a deployed model instead of starting over (requirement 7.1, property 29).

import protobuf from 'protobufjs';
import type { QNetParams } from '../actors/learner/q-network.ts';
import { ONNX_PROTO } from '../onnx/builder.ts';
import { InvalidModelError } from '../runtime/errors.ts';
import { ModelNotFoundError } from './store.ts';

interface Initializer {
  name: string;
  dims: number[];
  rawData?: Uint8Array;
  floatData?: number[];
}

const MAX_ELEMENTS = 50_000_000; // 200 MB of float32 — far above any policy Warden builds

let modelType: protobuf.Type | undefined;

/**
 * The weights of a Warden-exported policy. Bytes from a file are untrusted: anything that is not
 * a consistent Warden policy is an InvalidModelError (or ModelNotFoundError for a foreign model).
 */
export function readPolicyParams(bytes: Uint8Array): QNetParams {
  modelType ??= protobuf.loadSync(ONNX_PROTO).lookupType('onnx.ModelProto');
  let model: { graph?: { initializer?: Initializer[] } };
  try {
    model = modelType.toObject(modelType.decode(bytes), {
      longs: Number,
      bytes: Uint8Array,
    }) as typeof model;
  } catch (error) {
    throw new InvalidModelError(`not an ONNX model: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const inits = (model.graph?.initializer ?? [])
    .filter((t) => /^w\d+$/.test(t.name))
    .sort((a, b) => Number(a.name.slice(1)) - Number(b.name.slice(1)));
  if (inits.length < 2 || inits.length % 2 !== 0) {
    throw new ModelNotFoundError(
      'model has no Warden weight initializers (w0, w1, …): only Warden exports can be resumed',
    );
  }
  for (const t of inits) {
    const dims = t.dims ?? [];
    const expected = dims.reduce((a, d) => a * d, 1);
    const isWeight = Number(t.name.slice(1)) % 2 === 0;
    if (
      dims.length !== (isWeight ? 2 : 1) ||
      !dims.every((d) => Number.isInteger(d) && d > 0) ||
      expected > MAX_ELEMENTS
    )
      throw new InvalidModelError(`initializer ${t.name}: bad dims [${dims.join(', ')}]`);
    const got =
      t.rawData && t.rawData.byteLength > 0 ? t.rawData.byteLength / 4 : (t.floatData?.length ?? 0);
    if (got !== expected)
      throw new InvalidModelError(
        `initializer ${t.name}: ${got} values for dims [${dims.join(', ')}]`,
      );
  }
  for (let i = 0; i + 1 < inits.length; i += 2) {
    const [w, b] = [inits[i]!.dims, inits[i + 1]!.dims];
    if (b[0] !== w[1])
      throw new InvalidModelError(`initializers w${i}/w${i + 1}: bias does not match the layer`);
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
