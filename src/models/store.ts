// The models directory: versioned ONNX files with metadata, a `latest` pointer and rollback.
//
//   models/
//     drl_agent_v1764100000000.onnx              the seed's naming: v{timestamp in ms}
//     drl_agent_v1764100000000_metadata.json     ModelMetadata (sha256 of the .onnx inside)
//     latest                                     the version in service, e.g. "v1764100000000"
//
// An export becomes visible only after ONNX Runtime loaded it and its Q-values matched the
// training network's on random states (|Δ| ≤ 1e-4); a failed export leaves everything as it
// was (properties 11–15). Files are written under a temporary name and renamed into place.

import { createHash, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { forward, type QNetParams, seededRandom } from '../actors/learner/q-network.ts';
import type { ModelMetadata } from '../messages/model.ts';
import { WardenError } from '../runtime/errors.ts';
import { makeDirectory } from '../runtime/make-directory.ts';
import { buildPolicyModel } from './policy-onnx.ts';
import { signModel } from './signing.ts';

export class ModelExportError extends WardenError {
  override readonly code = 'WARDEN_MODEL_EXPORT';
}

export class ModelNotFoundError extends WardenError {
  override readonly code = 'WARDEN_MODEL_NOT_FOUND';
}

export const EXPORT_TOLERANCE = 1e-4;
const VERSION_RE = /^drl_agent_v(\d+)\.onnx$/;

export const modelFile = (dir: string, version: string) => join(dir, `drl_agent_${version}.onnx`);
export const metadataFile = (dir: string, version: string) =>
  join(dir, `drl_agent_${version}_metadata.json`);

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Versions present, oldest first. */
export function listVersions(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => VERSION_RE.exec(n)?.[1])
    .filter((t): t is string => t !== undefined)
    .map(Number)
    .sort((a, b) => a - b)
    .map((t) => `v${t}`);
}

/**
 * Deletes the oldest versions (model and metadata) until at most `keep` remain, never the one
 * `latest` points at (after a rollback it is not the newest); keep 0 keeps all
 * (models.keepVersions). Returns the versions deleted.
 */
export function pruneVersions(dir: string, keep: number): string[] {
  if (keep <= 0) return [];
  const versions = listVersions(dir);
  const latest = latestVersion(dir);
  const deleted: string[] = [];
  let excess = versions.length - keep;
  for (const version of versions) {
    if (excess <= 0) break;
    if (version === latest) continue;
    rmSync(modelFile(dir, version), { force: true });
    rmSync(metadataFile(dir, version), { force: true });
    deleted.push(version);
    excess--;
  }
  return deleted;
}

export function latestVersion(dir: string): string | undefined {
  try {
    const v = readFileSync(join(dir, 'latest'), 'utf8').trim();
    return v === '' ? undefined : v;
  } catch {
    return listVersions(dir).at(-1);
  }
}

/**
 * The versions to try at start, in order: the latest, then the others newest first. A latest
 * that cannot be used (damaged, deleted, a pointer to nothing) must not leave the rule table
 * serving while a verified older version is at hand.
 */
export function versionsToTry(dir: string): string[] {
  const latest = latestVersion(dir);
  const others = listVersions(dir)
    .reverse()
    .filter((v) => v !== latest);
  return latest === undefined ? others : [latest, ...others];
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function setLatest(dir: string, version: string): void {
  writeAtomic(join(dir, 'latest'), `${version}\n`);
}

export function readMetadata(dir: string, version: string): ModelMetadata {
  try {
    return JSON.parse(readFileSync(metadataFile(dir, version), 'utf8')) as ModelMetadata;
  } catch (error) {
    throw new ModelNotFoundError(`no readable metadata for ${version} in ${dir}`, { cause: error });
  }
}

/** Loads the model in ONNX Runtime and compares its Q-values with the network's on random states. */
export async function validateExport(
  bytes: Uint8Array,
  params: QNetParams,
  samples = 32,
  seed = 7,
): Promise<number> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const dim = params.dims[0]!;
    const rand = seededRandom(seed);
    const states = Float32Array.from({ length: samples * dim }, () => rand());
    const out = await session.run({ state: new ort.Tensor('float32', states, [samples, dim]) });
    const got = out.q_values?.data as Float32Array | undefined;
    const want = forward(params, states, samples);
    if (!got || got.length !== want.length)
      throw new ModelExportError(
        `exported model answers ${got?.length ?? 0} values, expected ${want.length}`,
      );
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    if (!(maxDiff <= EXPORT_TOLERANCE))
      throw new ModelExportError(
        `exported Q-values differ from the network by ${maxDiff} (> ${EXPORT_TOLERANCE})`,
      );
    return maxDiff;
  } finally {
    await session.release();
  }
}

export type MetadataDraft = Omit<
  ModelMetadata,
  | 'version'
  | 'timestamp'
  | 'sha256'
  | 'stateDim'
  | 'actionCount'
  | 'inputName'
  | 'outputName'
  | 'signature'
> & {
  readonly signature?: string | null;
};

/**
 * Exports params as the next version. Timestamps strictly increase even within one millisecond
 * (property 14). On any failure nothing becomes visible and the previous latest stays (15).
 */
export async function exportModel(
  dir: string,
  params: QNetParams,
  draft: MetadataDraft,
  options: {
    now?: number;
    makeLatest?: boolean;
    mutate?: (bytes: Uint8Array) => Uint8Array;
    signingKey?: KeyObject;
  } = {},
): Promise<{ metadata: ModelMetadata; path: string; maxDiff: number }> {
  makeDirectory(dir);
  const last = listVersions(dir).at(-1);
  const lastTs = last ? Number(last.slice(1)) : 0;
  const timestamp = Math.max(options.now ?? Date.now(), lastTs + 1);
  const version = `v${timestamp}`;
  let bytes = buildPolicyModel(params, { warden_version: version });
  if (options.mutate) bytes = options.mutate(bytes); // tests: simulate a corrupted export
  let maxDiff: number;
  try {
    maxDiff = await validateExport(bytes, params);
  } catch (error) {
    throw error instanceof ModelExportError
      ? error
      : new ModelExportError(
          `exported model does not load in ONNX Runtime: ${(error as Error).message}`,
          { cause: error },
        );
  }
  const metadata: ModelMetadata = {
    ...draft,
    version,
    timestamp,
    stateDim: params.dims[0]!,
    actionCount: params.dims.at(-1)!,
    inputName: 'state',
    outputName: 'q_values',
    sha256: sha256(bytes),
    signature: options.signingKey
      ? signModel(bytes, options.signingKey)
      : (draft.signature ?? null),
  };
  const path = modelFile(dir, version);
  try {
    writeAtomic(metadataFile(dir, version), `${JSON.stringify(metadata, null, 2)}\n`);
    writeAtomic(path, bytes);
  } catch (error) {
    rmSync(metadataFile(dir, version), { force: true });
    rmSync(path, { force: true });
    throw new ModelExportError(`could not write ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (options.makeLatest ?? true) setLatest(dir, version);
  return { metadata, path, maxDiff };
}

/**
 * Stores a version received from elsewhere (the fleet's model registry): metadata and bytes,
 * renamed into place; `latest` is left alone (it follows once the inference pool serves it).
 */
export function storeReceivedModel(dir: string, metadata: ModelMetadata, bytes: Uint8Array): void {
  makeDirectory(dir);
  writeAtomic(modelFile(dir, metadata.version), bytes);
  writeAtomic(metadataFile(dir, metadata.version), `${JSON.stringify(metadata, null, 2)}\n`);
}

/**
 * Points `latest` at the newest version older than the current one; returns it. The current one
 * need not exist any more: a pointer left at a deleted version rolls back to the newest version
 * before it (and a pointer that names no version at all, to the newest there is).
 */
export function rollback(dir: string): string {
  const versions = listVersions(dir);
  const current = latestVersion(dir);
  const currentTs = /^v\d+$/.test(current ?? '')
    ? Number(current!.slice(1))
    : Number.POSITIVE_INFINITY;
  const previous = versions.findLast((v) => Number(v.slice(1)) < currentTs);
  if (previous === undefined)
    throw new ModelNotFoundError(`no version before ${current ?? '(none)'} in ${dir}`);
  setLatest(dir, previous);
  return previous;
}
