// A policy model loaded in ONNX Runtime: Warden's own exports (input `state`, output `q_values`)
// and any model with one float input [N, dim] and one float output [N, actions] (a PyTorch
// `torch.onnx.export` of the seed's network). Checks the file's sha256 against its metadata
// when there is one.

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { verifyModel } from '../../models/signing.ts';
import { sha256 } from '../../models/store.ts';
import { WardenError } from '../../runtime/errors.ts';

export class ModelLoadError extends WardenError {
  override readonly code = 'WARDEN_MODEL_LOAD';
}

export class OnnxPolicy {
  readonly session: ort.InferenceSession;
  readonly inputName: string;
  readonly outputName: string;
  readonly dim: number;
  readonly actions: number;

  private constructor(
    session: ort.InferenceSession,
    inputName: string,
    outputName: string,
    dim: number,
    actions: number,
  ) {
    this.session = session;
    this.inputName = inputName;
    this.outputName = outputName;
    this.dim = dim;
    this.actions = actions;
  }

  /**
   * Loads and probes a model. Before ONNX Runtime sees the bytes: `expectedSha256` (hex) is
   * checked, and with a public key the Ed25519 signature (a wrong one is always refused, a
   * missing one when `requireSignature`).
   */
  static async load(
    source: string | Uint8Array,
    dim: number,
    actions: number,
    expectedSha256?: string,
    provenance?: {
      readonly publicKey: KeyObject;
      readonly signature: string | null;
      readonly requireSignature: boolean;
    },
  ): Promise<OnnxPolicy> {
    let bytes: Uint8Array;
    try {
      bytes = typeof source === 'string' ? readFileSync(source) : source;
    } catch (error) {
      throw new ModelLoadError(`cannot read model ${String(source)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (expectedSha256 !== undefined && sha256(bytes) !== expectedSha256) {
      throw new ModelLoadError('model file does not match the sha256 in its metadata');
    }
    if (provenance) {
      if (provenance.signature === null) {
        if (provenance.requireSignature)
          throw new ModelLoadError('model is unsigned and models.requireSignature is set');
      } else if (!verifyModel(bytes, provenance.signature, provenance.publicKey)) {
        throw new ModelLoadError('model signature does not verify against models.publicKey');
      }
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
      });
    } catch (error) {
      throw new ModelLoadError(`ONNX Runtime cannot load the model: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
      await session.release();
      throw new ModelLoadError(
        `model has ${session.inputNames.length} inputs and ${session.outputNames.length} outputs; expected one of each`,
      );
    }
    const policy = new OnnxPolicy(
      session,
      session.inputNames[0]!,
      session.outputNames[0]!,
      dim,
      actions,
    );
    try {
      const q = await policy.qValues(new Float32Array(dim * 2), 2);
      if (q.length !== 2 * actions)
        throw new Error(`answers ${q.length / 2} values per state, expected ${actions}`);
    } catch (error) {
      await session.release();
      throw new ModelLoadError(
        `model does not fit state dim ${dim} → ${actions} actions: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return policy;
  }

  async qValues(states: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.session.run({
      [this.inputName]: new ort.Tensor('float32', states.subarray(0, n * this.dim), [n, this.dim]),
    });
    return out[this.outputName]!.data as Float32Array;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
