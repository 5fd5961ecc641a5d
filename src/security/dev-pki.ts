// A throw-away PKI for development and tests: one CA, a server certificate for localhost and
// 127.0.0.1, and client certificates whose common names map to roles (security.auth). ECDSA P-256,
// built with @peculiar/x509 over node:crypto's WebCrypto. Production certificates come from the
// operator's own CA; `warden tls dev-pki <dir>` writes these for trying TLS out.

import 'reflect-metadata'; // tsyringe, under @peculiar/x509, needs the Reflect metadata polyfill
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { makeDirectory } from '../runtime/make-directory.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface IssuedFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface DevPki {
  readonly dir: string;
  readonly caFile: string;
  readonly server: IssuedFiles;
  readonly clients: Readonly<Record<string, IssuedFiles>>;
  /** Issues another server certificate signed by the same CA (e.g. to test reloading). */
  reissueServer(): Promise<IssuedFiles>;
}

type KeyPair = webcrypto.CryptoKeyPair;

const newKeys = () =>
  webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<KeyPair>;

async function pemKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
}

let serial = 1;

async function issue(
  ca: { cert: x509.X509Certificate; keys: KeyPair },
  subject: string,
  usage: 'server' | 'client',
  names: string[],
  validDays: number,
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (++serial).toString(16).padStart(2, '0'),
    subject: `CN=${subject}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + validDays * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        [usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      ...(names.length > 0
        ? [
            new x509.SubjectAlternativeNameExtension(
              names.map((n) =>
                /^[\d.]+$|:/.test(n) ? { type: 'ip', value: n } : { type: 'dns', value: n },
              ),
            ),
          ]
        : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await pemKey(keys.privateKey) };
}

function write(dir: string, name: string, pair: { certPem: string; keyPem: string }): IssuedFiles {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  writeFileSync(certFile, pair.certPem);
  writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

/**
 * Writes ca.pem, server.pem/server-key.pem (localhost, 127.0.0.1, ::1) and one
 * client-<name>.pem/-key.pem per client common name into `dir`.
 */
export async function createDevPki(
  dir: string,
  clients: readonly string[] = ['detector', 'operator'],
  validDays = 30,
): Promise<DevPki> {
  makeDirectory(dir);
  const keys = await newKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Warden development CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + validDays * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
  });
  const ca = { cert: caCert, keys };
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caCert.toString('pem'));
  const serverNames = ['localhost', '127.0.0.1', '::1'];
  const server = write(
    dir,
    'server',
    await issue(ca, 'localhost', 'server', serverNames, validDays),
  );
  const issued: Record<string, IssuedFiles> = {};
  for (const name of clients) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`bad client name ${name}`);
    issued[name] = write(dir, `client-${name}`, await issue(ca, name, 'client', [], validDays));
  }
  return {
    dir,
    caFile,
    server,
    clients: issued,
    reissueServer: async () =>
      write(dir, 'server', await issue(ca, 'localhost', 'server', serverNames, validDays)),
  };
}
