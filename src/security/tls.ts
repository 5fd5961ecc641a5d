// gRPC transport security for every Warden channel: TLS and mutual TLS from PEM files that are
// re-read every `security.certReloadMs` (grpc-js's FileWatcherCertificateProvider: renewed
// certificates take effect for new connections without a restart), and the rule that plaintext
// is allowed only on loopback unless `security.allowPlaintextRemote` says otherwise.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { InsecureChannelError } from '../runtime/errors.ts';

/** Client side of a channel to a sandbox (or to Warden's own services, from the CLI). */
export interface ClientTls {
  /** CA bundle that verifies the server's certificate. */
  readonly caFile: string;
  /** Client certificate and key for mutual TLS; null = server-authenticated TLS only. */
  readonly certFile?: string | null;
  readonly keyFile?: string | null;
  /** Expected name in the server's certificate when it differs from the address's host. */
  readonly serverName?: string | null;
}

/** Server side: Warden's PatternQuery/Admin services, or a reference sandbox. */
export interface ServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that client certificates must chain to; null = no client certificates asked for. */
  readonly clientCaFile?: string | null;
  /** Refuse connections without a valid client certificate (mutual TLS). */
  readonly requireClientCert?: boolean;
}

export interface TransportPolicy {
  readonly allowPlaintextRemote: boolean;
  readonly certReloadMs: number;
}

export const DEFAULT_TRANSPORT: TransportPolicy = {
  allowPlaintextRemote: false,
  certReloadMs: 60_000,
};

/** The host part of `host:port`, `[v6]:port` or a bare host. */
export function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colons = address.split(':').length - 1;
  if (colons === 1) return address.slice(0, address.lastIndexOf(':'));
  return address; // bare host or bare IPv6
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Reads a PEM file now so a wrong path or a broken file is a clear error at start. */
function checkPem(file: string, kind: 'certificate' | 'key', what: string): void {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (error) {
    throw new InsecureChannelError(`${what}: cannot read ${kind} file ${file}`, { cause: error });
  }
  let certificate: X509Certificate | undefined;
  try {
    if (kind === 'key') createPrivateKey(text);
    else certificate = new X509Certificate(text);
  } catch (error) {
    throw new InsecureChannelError(`${what}: ${file} is not a PEM ${kind}`, { cause: error });
  }
  // Every handshake with it would fail, with an error that names neither file nor date.
  if (certificate && new Date(certificate.validTo).getTime() < Date.now())
    throw new InsecureChannelError(
      `${what}: the certificate in ${file} expired on ${new Date(certificate.validTo).toISOString()}`,
    );
}

/**
 * When the (first) certificate of a PEM file expires, in Unix seconds; undefined when the file
 * cannot be read as one. Read afresh on every call: the files are renewed in place.
 */
export function certificateExpiry(file: string): number | undefined {
  try {
    return new Date(new X509Certificate(readFileSync(file)).validTo).getTime() / 1000;
  } catch {
    return undefined;
  }
}

/** Every certificate file a configuration names, and what it is for. */
export function configuredCertificates(config: {
  readonly sandboxes: readonly { readonly name: string; readonly tls?: ClientTls | null }[];
  readonly security: { readonly services: { readonly tls: ServerTls | null } };
}): { readonly use: string; readonly file: string }[] {
  const out: { use: string; file: string }[] = [];
  const services = config.security.services.tls;
  if (services) {
    out.push({ use: 'services', file: services.certFile });
    if (services.clientCaFile) out.push({ use: 'services client CA', file: services.clientCaFile });
  }
  for (const s of config.sandboxes) {
    if (!s.tls) continue;
    out.push({ use: `sandbox ${s.name} CA`, file: s.tls.caFile });
    if (s.tls.certFile) out.push({ use: `sandbox ${s.name} client`, file: s.tls.certFile });
  }
  return out;
}

const provider = (config: grpc.experimental.FileWatcherCertificateProviderConfig) =>
  new grpc.experimental.FileWatcherCertificateProvider(config);

function refusePlaintext(host: string, what: string, policy: TransportPolicy): void {
  if (!isLoopback(host) && !policy.allowPlaintextRemote) {
    throw new InsecureChannelError(
      `${what}: ${host} is not loopback and no TLS is configured (set TLS files, or security.allowPlaintextRemote to accept plaintext)`,
    );
  }
}

export function serverCredentials(
  tls: ServerTls | null,
  host: string,
  what: string,
  policy: TransportPolicy = DEFAULT_TRANSPORT,
): grpc.ServerCredentials {
  if (!tls) {
    refusePlaintext(host, what, policy);
    return grpc.ServerCredentials.createInsecure();
  }
  checkPem(tls.certFile, 'certificate', what);
  checkPem(tls.keyFile, 'key', what);
  if (tls.clientCaFile) checkPem(tls.clientCaFile, 'certificate', what);
  if (tls.requireClientCert && !tls.clientCaFile) {
    throw new InsecureChannelError(`${what}: requireClientCert needs clientCaFile`);
  }
  const identity = provider({
    certificateFile: tls.certFile,
    privateKeyFile: tls.keyFile,
    refreshIntervalMs: policy.certReloadMs,
  });
  const clientCa = tls.clientCaFile
    ? provider({ caCertificateFile: tls.clientCaFile, refreshIntervalMs: policy.certReloadMs })
    : null;
  // grpc-js 1.14 declares (ca, identity, require) but its constructor takes (identity, ca, require);
  // passing the identity first is what works (checked by test/security/tls.test.ts).
  return grpc.experimental.createCertificateProviderServerCredentials(
    identity,
    clientCa as unknown as grpc.experimental.CertificateProvider,
    tls.requireClientCert === true,
  );
}

export function channelCredentials(
  address: string,
  tls: ClientTls | null,
  what: string,
  policy: TransportPolicy = DEFAULT_TRANSPORT,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) {
    refusePlaintext(hostOf(address), what, policy);
    return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  checkPem(tls.caFile, 'certificate', what);
  if (!tls.certFile !== !tls.keyFile) {
    throw new InsecureChannelError(`${what}: certFile and keyFile go together`);
  }
  if (tls.certFile) checkPem(tls.certFile, 'certificate', what);
  if (tls.keyFile) checkPem(tls.keyFile, 'key', what);
  const ca = provider({ caCertificateFile: tls.caFile, refreshIntervalMs: policy.certReloadMs });
  const identity =
    tls.certFile && tls.keyFile
      ? provider({
          certificateFile: tls.certFile,
          privateKeyFile: tls.keyFile,
          refreshIntervalMs: policy.certReloadMs,
        })
      : null;
  return {
    credentials: grpc.experimental.createCertificateProviderChannelCredentials(ca, identity),
    options: tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {},
  };
}
