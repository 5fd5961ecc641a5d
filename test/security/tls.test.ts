// TLS and mutual TLS over loopback with certificates the test generates: Warden's services
// (PatternQuery, authenticated by client certificate or token) and a sandbox channel; plaintext
// refused off loopback; a renewed server certificate served without a restart.

import { connect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { sandboxClient } from '../../src/sandbox/grpc.ts';
import { ReferenceSandbox } from '../../src/sandbox/reference-sandbox.ts';
import { createDevPki, type DevPki } from '../../src/security/dev-pki.ts';
import { channelCredentials, serverCredentials } from '../../src/security/tls.ts';
import { metricsRegistry } from '../../src/services/metrics.ts';
import { patternQueryClient } from '../../src/services/pattern-query.ts';
import { type RunningServices, startServices } from '../../src/services/server.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

let pki: DevPki;
let db: TestDatabase;
const running: RunningServices[] = [];
test.before(async () => {
  pki = await createDevPki(tempDir('warden-pki-'), ['detector', 'operator', 'stranger']);
  db = await startTestDatabase();
});
test.after.always(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await db?.stop();
});

async function services(tls: object, extra: object = {}): Promise<RunningServices> {
  const s = await startServices({
    db: db.pool,
    log: silentLogger,
    config: testConfig({
      database: { queryPort: 0 },
      security: {
        certReloadMs: 1_000,
        services: { tls },
        auth: {
          clientCertRoles: [
            { commonName: 'detector', roles: ['read'] },
            { commonName: 'operator', roles: ['operate'] },
          ],
        },
        ...extra,
      },
    }),
    env: { WARDEN_AUTH_TOKENS: 'siem:read:siem-token-0123456789abcdef' },
  });
  running.push(s);
  return s;
}

const outcome = async (client: ReturnType<typeof patternQueryClient>) => {
  try {
    await client.byAttackType('none');
    return 'ok';
  } catch (error) {
    return grpc.status[(error as { code: number }).code] ?? 'error';
  } finally {
    client.close();
  }
};

test.serial(
  'server TLS: a client that trusts the CA gets in with its token; a plaintext client does not',
  async (t) => {
    const s = await services({ certFile: pki.server.certFile, keyFile: pki.server.keyFile });
    const address = `127.0.0.1:${s.port}`;
    const tls = { caFile: pki.caFile, certFile: null, keyFile: null, serverName: null };
    t.is(
      await outcome(patternQueryClient(address, { tls, token: 'siem-token-0123456789abcdef' })),
      'ok',
    );
    t.is(await outcome(patternQueryClient(address, { tls })), 'UNAUTHENTICATED');
    t.is(
      await outcome(
        patternQueryClient(address, { token: 'siem-token-0123456789abcdef', deadlineMs: 1_500 }),
      ),
      'UNAVAILABLE',
      'plaintext to a TLS port never reaches a handler',
    );
  },
);

test.serial(
  'mutual TLS: client certificates are required, and their common name carries the role',
  async (t) => {
    const s = await services({
      certFile: pki.server.certFile,
      keyFile: pki.server.keyFile,
      clientCaFile: pki.caFile,
      requireClientCert: true,
    });
    const address = `127.0.0.1:${s.port}`;
    const as = (name: string | null) => ({
      caFile: pki.caFile,
      certFile: name ? pki.clients[name]!.certFile : null,
      keyFile: name ? pki.clients[name]!.keyFile : null,
      serverName: 'localhost',
    });
    t.is(
      await outcome(patternQueryClient(address, { tls: as('detector') })),
      'ok',
      'certificate → read',
    );
    t.is(await outcome(patternQueryClient(address, { tls: as('operator') })), 'PERMISSION_DENIED');
    t.is(
      await outcome(patternQueryClient(address, { tls: as('stranger') })),
      'UNAUTHENTICATED',
      'verified but unmapped',
    );
    t.is(
      await outcome(
        patternQueryClient(address, {
          tls: as(null),
          token: 'siem-token-0123456789abcdef',
          deadlineMs: 1_500,
        }),
      ),
      'UNAVAILABLE',
      'no client certificate: the handshake fails even with a token',
    );
  },
);

test.serial(
  'a sandbox channel over mutual TLS; refused without the client certificate',
  async (t) => {
    const sandbox = new ReferenceSandbox({
      name: 'tls',
      traces: [],
      benign: [],
      log: silentLogger,
    });
    const port = await sandbox.start(0, '127.0.0.1', {
      certFile: pki.server.certFile,
      keyFile: pki.server.keyFile,
      clientCaFile: pki.caFile,
      requireClientCert: true,
    });
    t.teardown(() => sandbox.stop());
    const withCert = sandboxClient(`localhost:${port}`, {
      caFile: pki.caFile,
      certFile: pki.clients.detector!.certFile,
      keyFile: pki.clients.detector!.keyFile,
      serverName: null,
    });
    const acks = await withCert.act([], 2_000);
    withCert.close();
    t.deepEqual(acks, []);
    const without = sandboxClient(`localhost:${port}`, {
      caFile: pki.caFile,
      certFile: null,
      keyFile: null,
      serverName: null,
    });
    const error = await without.act([], 1_500).catch((e: { code: number }) => e);
    without.close();
    t.is((error as { code: number }).code, grpc.status.UNAVAILABLE);
  },
);

test('plaintext is refused off loopback unless explicitly allowed', (t) => {
  t.throws(() => sandboxClient('10.20.30.40:50051'), { code: 'WARDEN_INSECURE_CHANNEL' } as object);
  t.throws(() => serverCredentials(null, '0.0.0.0', 'services'), { message: /not loopback/ });
  t.notThrows(() => sandboxClient('[::1]:50051').close());
  t.notThrows(() =>
    channelCredentials('10.20.30.40:50051', null, 'x', {
      allowPlaintextRemote: true,
      certReloadMs: 1_000,
    }),
  );
  t.throws(
    () =>
      serverCredentials(
        {
          certFile: '/nonexistent.pem',
          keyFile: pki.server.keyFile,
          clientCaFile: null,
          requireClientCert: false,
        },
        '0.0.0.0',
        'services',
      ),
    { message: /cannot read certificate file \/nonexistent\.pem/ },
  );
});

test.serial('authentication may be switched off only with the services on loopback', async (t) => {
  const attempt = (host: string) =>
    startServices({
      db: db.pool,
      log: silentLogger,
      config: testConfig({
        database: { queryPort: 0 },
        security: {
          allowPlaintextRemote: true,
          services: { host },
          auth: { required: false },
        },
      }),
    });
  await t.throwsAsync(attempt('0.0.0.0'), {
    message: /may only listen on loopback, not 0\.0\.0\.0/,
  });
  const local = await attempt('127.0.0.1');
  running.push(local);
  t.is(await outcome(patternQueryClient(`127.0.0.1:${local.port}`)), 'ok', 'no token needed');
});

/** The certificate a fresh TLS connection to the port is shown (its fingerprint). */
const servedFingerprint = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    socket.on('error', reject);
  });

test.serial(
  'a renewed server certificate is served to new connections without a restart',
  async (t) => {
    const dir = tempDir('warden-pki-');
    const own = await createDevPki(dir, []);
    const s = await services({ certFile: own.server.certFile, keyFile: own.server.keyFile });
    // certificate files are read asynchronously after the bind: the first handshakes may be dropped
    let before = '';
    while (!before) before = await servedFingerprint(s.port).catch(() => '');
    await own.reissueServer();
    const deadline = Date.now() + 10_000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      after = await servedFingerprint(s.port).catch(() => before);
    }
    t.not(after, before, 'the new certificate within a few reload intervals');
  },
);

test('an expired certificate stops the start with the file and the date; configured certificates report their expiry on /metrics', async (t) => {
  const expired = await createDevPki(tempDir('warden-expired-'), ['detector'], -1);
  t.throws(
    () =>
      serverCredentials(
        { certFile: expired.server.certFile, keyFile: expired.server.keyFile },
        '127.0.0.1',
        'services',
      ),
    {
      message: new RegExp(
        `^services: the certificate in ${expired.server.certFile} expired on \\d{4}-\\d\\d-\\d\\dT`,
      ),
    },
  );
  t.throws(() => channelCredentials('10.0.0.1:50061', { caFile: expired.caFile }, 'sandbox x'), {
    message: /^sandbox x: the certificate in .*ca\.pem expired on/,
  });

  // What Prometheus scrapes: every certificate file the configuration names, read afresh.
  const system = new ActorSystem({
    config: testConfig({
      runtime: { placement: {} },
      security: {
        services: {
          tls: {
            certFile: pki.server.certFile,
            keyFile: pki.server.keyFile,
            clientCaFile: pki.caFile,
          },
        },
      },
      sandboxes: [
        {
          name: 'lab',
          address: '10.0.0.1:50061',
          tls: {
            caFile: pki.caFile,
            certFile: pki.clients.detector!.certFile,
            keyFile: pki.clients.detector!.keyFile,
          },
        },
      ],
    }),
  });
  const body = await metricsRegistry(system).scrape();
  const expiry = (use: string) =>
    Number(
      body.match(
        new RegExp(
          `^warden_tls_certificate_expiry_timestamp_seconds\\{use="${use}",file="[^"]+"\\} (\\S+)$`,
          'm',
        ),
      )?.[1],
    );
  for (const use of ['services', 'services client CA', 'sandbox lab CA', 'sandbox lab client']) {
    const days = (expiry(use) - Date.now() / 1000) / 86_400;
    t.true(days > 29 && days <= 30, `${use}: ${days} days`);
  }
});
