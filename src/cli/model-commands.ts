// `warden models list|keygen|sign|verify|rollback`: the versions of a models directory, model
// provenance (Ed25519) and the latest pointer.

import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateSigningKeys, loadPrivateKey, signModel, verifyModel } from '../models/signing.ts';
import {
  latestVersion,
  listVersions,
  metadataFile,
  modelFile,
  readMetadata,
  rollback,
  sha256,
} from '../models/store.ts';

type Out = NodeJS.WritableStream;

/** A version of a models directory (default: latest) with its bytes and metadata. */
function loadVersion(dir: string, requested?: string) {
  const version = requested ?? latestVersion(dir);
  if (!version) throw new Error(`no model in ${dir}`);
  return {
    version,
    bytes: readFileSync(modelFile(dir, version)),
    metadata: readMetadata(dir, version),
  };
}

/** One version as `models list` reports it; a version whose files do not read says why. */
function describe(dir: string, version: string, latest: string | undefined) {
  const base = { version, latest: version === latest };
  try {
    const metadata = readMetadata(dir, version);
    let checksum: 'ok' | 'MISMATCH' | 'MISSING FILE' = 'MISSING FILE';
    try {
      checksum =
        sha256(readFileSync(modelFile(dir, version))) === metadata.sha256 ? 'ok' : 'MISMATCH';
    } catch {}
    return {
      ...base,
      createdAt: new Date(metadata.timestamp).toISOString(),
      stateDim: metadata.stateDim,
      engine: metadata.engine,
      trainingEpisodes: metadata.trainingEpisodes,
      metrics: metadata.metrics,
      sha256: checksum,
      signed: typeof metadata.signature === 'string' && metadata.signature.length > 0,
    };
  } catch (error) {
    return { ...base, error: (error as Error).message };
  }
}

/** The versions of a models directory, newest first, with what each was measured at. */
export function listCommand(opts: { dir: string; json?: boolean }, out: Out): number {
  const latest = latestVersion(opts.dir);
  const rows = listVersions(opts.dir)
    .reverse()
    .map((v) => describe(opts.dir, v, latest));
  if (opts.json) {
    out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const pct = (x: number | undefined) => (x === undefined ? '   -' : `${(x * 100).toFixed(1)}%`);
  for (const r of rows) {
    const mark = r.latest ? '* ' : '  ';
    if ('error' in r) {
      out.write(`${mark}${r.version}  ${r.error}\n`);
      continue;
    }
    const m = r.metrics;
    out.write(
      `${mark}${r.version}  ${r.createdAt}  accuracy ${pct(m?.detectionAccuracy)}  FPR ${pct(m?.falsePositiveRate)}  FNR ${pct(m?.falseNegativeRate)}  reward ${m?.averageReward?.toFixed(3) ?? '-'}  dim ${r.stateDim}  sha256 ${r.sha256}  ${r.signed ? 'signed' : 'unsigned'}\n`,
    );
  }
  out.write(
    rows.length === 0
      ? `no model in ${opts.dir}\n`
      : `${rows.length} version(s)${latest ? `; * = latest (${latest}), what a Warden starting on ${opts.dir} serves` : ''}\n`,
  );
  return 0;
}

export function keygenCommand(opts: { out: string }, out: Out): number {
  const pub = `${opts.out}.pub.pem`;
  const key = `${opts.out}.key.pem`;
  if (existsSync(pub) || existsSync(key))
    throw new Error(`${pub} or ${key} exists; not overwriting a key`);
  const { publicKeyPem, privateKeyPem } = generateSigningKeys();
  writeFileSync(key, privateKeyPem, { mode: 0o600 });
  writeFileSync(pub, publicKeyPem);
  out.write(
    `private key → ${key} (mode 0600; give it to the exporter as WARDEN_MODEL_SIGNING_KEY)\npublic key → ${pub} (set models.publicKey to it)\n`,
  );
  return 0;
}

/** Signs a version in a models directory (its metadata gets the signature), or the latest. */
export function signCommand(
  opts: { dir: string; version?: string; key: string },
  out: Out,
): number {
  const { version, bytes, metadata } = loadVersion(opts.dir, opts.version);
  if (metadata.sha256 !== sha256(bytes))
    throw new Error(
      `${version}: the model file does not match the sha256 in its metadata; not signing it`,
    );
  const signature = signModel(bytes, loadPrivateKey(opts.key));
  writeFileSync(
    metadataFile(opts.dir, version),
    `${JSON.stringify({ ...metadata, signature }, null, 2)}\n`,
  );
  out.write(`signed ${version}\n`);
  return 0;
}

export function verifyCommand(
  opts: { dir: string; version?: string; publicKey: string },
  out: Out,
): number {
  const { version, bytes, metadata } = loadVersion(opts.dir, opts.version);
  const checksum = metadata.sha256 === sha256(bytes);
  const signed = metadata.signature !== null && metadata.signature !== undefined;
  const valid =
    signed &&
    verifyModel(bytes, metadata.signature!, createPublicKey(readFileSync(opts.publicKey, 'utf8')));
  out.write(
    `${version}: sha256 ${checksum ? 'ok' : 'MISMATCH'}, signature ${!signed ? 'MISSING' : valid ? 'ok' : 'INVALID'}\n`,
  );
  return checksum && valid ? 0 : 1;
}

export function rollbackCommand(opts: { dir: string }, out: Out): number {
  const previous = rollback(opts.dir);
  out.write(
    `latest → ${previous} (a running Warden picks it up at its next model announcement or restart)\n`,
  );
  return 0;
}
