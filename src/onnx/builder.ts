// A small ONNX graph builder: nodes, initializers, typed inputs/outputs → ModelProto bytes
// (proto/onnx/onnx-subset.proto). Used for the exported policy and the learner's training step.

import protobuf from 'protobufjs';

export const ONNX_PROTO = new URL('../../proto/onnx/onnx-subset.proto', import.meta.url).pathname;
export const OPSET = 17;
const IR_VERSION = 8;
const FLOAT = 1;
const INT64 = 7;

let root: protobuf.Root | undefined;
const onnxRoot = () => (root ??= protobuf.loadSync(ONNX_PROTO));

export type Dim = number | string;
export type AttrValue =
  | number
  | string
  | readonly number[]
  | { readonly ints: readonly number[] }
  | { readonly float: number };

interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

function attribute(name: string, value: AttrValue): Record<string, unknown> {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: 2, i: value } : { name, type: 1, f: value };
  }
  if (typeof value === 'string') return { name, type: 3, s: Buffer.from(value) };
  if ('float' in value) return { name, type: 1, f: (value as { float: number }).float };
  if ('ints' in value)
    return { name, type: 7, ints: [...(value as { ints: readonly number[] }).ints] };
  return { name, type: 6, floats: [...(value as readonly number[])] };
}

const valueInfo = (name: string, elemType: number, shape: readonly Dim[]) => ({
  name,
  type: {
    tensorType: {
      elemType,
      shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
    },
  },
});

export class GraphBuilder {
  readonly #nodes: NodeSpec[] = [];
  readonly #initializers: Record<string, unknown>[] = [];
  readonly #inputs: Record<string, unknown>[] = [];
  readonly #outputs: Record<string, unknown>[] = [];
  #counter = 0;

  /** Adds a node; returns its (first) output name. */
  op(
    op: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    outputs?: readonly string[],
  ): string {
    const outs = outputs ?? [`${op.toLowerCase()}_${this.#counter++}`];
    this.#nodes.push({ op, inputs, outputs: outs, attrs });
    return outs[0]!;
  }

  input(name: string, shape: readonly Dim[], type: 'float' | 'int64' = 'float'): string {
    this.#inputs.push(valueInfo(name, type === 'float' ? FLOAT : INT64, shape));
    return name;
  }

  output(name: string, shape: readonly Dim[], type: 'float' | 'int64' = 'float'): void {
    this.#outputs.push(valueInfo(name, type === 'float' ? FLOAT : INT64, shape));
  }

  /** Float initializer (weights), stored as raw little-endian bytes. */
  constant(name: string, data: Float32Array, dims: readonly number[]): string {
    this.#initializers.push({
      name,
      dims: [...dims],
      dataType: FLOAT,
      rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64Constant(
    name: string,
    values: readonly number[],
    dims: readonly number[] = [values.length],
  ): string {
    this.#initializers.push({ name, dims: [...dims], dataType: INT64, int64Data: [...values] });
    return name;
  }

  readonly #scalars = new Map<string, string>();

  /** A float scalar constant, added once however often it is asked for (no unused initializers). */
  scalar(value: number): string {
    const key = String(value);
    let name = this.#scalars.get(key);
    if (name === undefined) {
      name = this.constant(`c_${this.#scalars.size}`, Float32Array.of(value), []);
      this.#scalars.set(key, name);
    }
    return name;
  }

  build(name: string, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
    const Model = onnxRoot().lookupType('onnx.ModelProto');
    const model = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'warden',
      producerVersion: '0.1.0',
      graph: {
        name,
        node: this.#nodes.map((n, i) => ({
          name: `${n.op}_${i}`,
          opType: n.op,
          input: [...n.inputs],
          output: [...n.outputs],
          attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
        })),
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    };
    const err = Model.verify(model);
    if (err) throw new Error(`internal: ONNX model does not verify: ${err}`);
    return Model.encode(Model.fromObject(model)).finish();
  }
}
