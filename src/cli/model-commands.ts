// `warden models keygen|sign|verify|rollback`: model provenance (Ed25519) and the latest pointer.

import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateSigningKeys, loadPrivateKey, signModel, verifyModel } from '../models/signing.ts';
import {
  latestVersion,
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
