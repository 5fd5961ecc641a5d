// Model provenance with Ed25519 (node:crypto): the exporter signs the ONNX bytes when it holds a
// private key; inference verifies against the configured public key before a model is used.

import { createPrivateKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function generateSigningKeys(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A PEM string, or a path to a PEM file. */
function pem(source: string): string {
  return source.includes('-----BEGIN') ? source : readFileSync(source, 'utf8');
}

export const loadPrivateKey = (source: string): KeyObject => createPrivateKey(pem(source));

export function signModel(bytes: Uint8Array, privateKey: KeyObject): string {
  return sign(null, bytes, privateKey).toString('base64');
}

export function verifyModel(bytes: Uint8Array, signature: string, publicKey: KeyObject): boolean {
  try {
    return verify(null, bytes, publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The exporter's signing key: WARDEN_MODEL_SIGNING_KEY holds a PEM or a path to one (a secret). */
export function signingKeyFromEnv(env: NodeJS.ProcessEnv = process.env): KeyObject | undefined {
  const source = env.WARDEN_MODEL_SIGNING_KEY;
  return source ? loadPrivateKey(source) : undefined;
}
