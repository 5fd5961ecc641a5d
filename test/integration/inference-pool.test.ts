// The inference pool on real worker threads with real ONNX Runtime sessions: decisions equal the
// model's argmax; missing, corrupt, wrong-shape and bad-checksum models fall back to the newest
// version that loads, else the rule table, with an alert while answering; hot reload under a continuous stream fails nothing
// (property 18); rollback.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { argmaxQ, chooseAction } from '../../src/actors/inference/decide.ts';
import { InferencePool, type PoolDecision } from '../../src/actors/inference/pool.ts';
import { forward, initParams, type QNetParams } from '../../src/actors/learner/q-network.ts';
import type { ModelActivated } from '../../src/messages/model.ts';
import { generateSigningKeys, loadPrivateKey } from '../../src/models/signing.ts';
import { exportModel, modelFile, setLatest, sha256 } from '../../src/models/store.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { metricsRegistry } from '../../src/services/metrics.ts';
import { Inbox, modelDraft, testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const DIM = 32;
const draft = modelDraft();
const config = (workers = 1) =>
  testConfig({
    telemetry: { stateDim: DIM },
    inference: { workers, maxBatch: 32, ringCapacity: 1024 },
  });
const models = () => tempDir('warden-pool-');
const state = (i: number) =>
  Float32Array.from({ length: DIM }, (_, k) => ((i * 31 + k * 7) % 100) / 100);

async function withPool(
  workers: number,
  fn: (pool: InferencePool) => Promise<void>,
): Promise<void> {
  const pool = await InferencePool.start(config(workers));
  try {
    await fn(pool);
  } finally {
    await pool.close();
  }
}

test('4.1: the latest model is loaded and every decision is its argmax, with Q-values, confidence and version', async (t) => {
  const dir = models();
  const params = initParams([DIM, 16, 16, 6], false, 9);
  const { metadata } = await exportModel(dir, params, draft);
  await withPool(2, async (pool) => {
    t.is(await pool.loadLatest(dir), metadata.version);
    const decisions = await Promise.all(
      Array.from({ length: 200 }, (_, i) => pool.decide(state(i))),
    );
    decisions.forEach((d, i) => {
      const q = forward(params, state(i), 1);
      t.is(d.action, argmaxQ(q));
      t.is(d.modelVersion, metadata.version);
      t.is(d.source, 'model');
      t.true(d.qValues.every((v, a) => Math.abs(v - q[a]!) < 1e-4));
      t.true(d.confidence >= 1 / 6 && d.confidence <= 1);
    });
    const stats = await pool.stats();
    t.is(
      stats.workers.reduce((n, w) => n + w.decisions, 0),
      200,
    );
  });
});

test('inference.verdictMargin: a verdict short of the margin observes on instead, set live', async (t) => {
  const dir = models();
  const params = initParams([DIM, 16, 16, 6], false, 9);
  await exportModel(dir, params, draft);
  const states = Array.from({ length: 400 }, (_, i) => state(i));
  const qs = states.map((s) => forward(params, s, 1));
  // The margin: about the median lead of the verdicts the greedy policy gives over observing on,
  // halfway between two leads far enough apart that ONNX Runtime's float32 rounding cannot put a
  // lead on the other side of it.
  const leads = qs
    .filter((q) => argmaxQ(q) >= 2)
    .map((q) => q[argmaxQ(q)]! - Math.max(q[0]!, q[1]!))
    .sort((a, b) => a - b);
  t.true(leads.length >= 10, 'the network gives verdicts on some of these states');
  let m = Math.floor(leads.length / 2);
  while (m < leads.length - 1 && leads[m]! - leads[m - 1]! < 1e-3) m++;
  const margin = (leads[m - 1]! + leads[m]!) / 2;
  await withPool(1, async (pool) => {
    await pool.loadLatest(dir);
    const greedy = await Promise.all(states.map((s) => pool.decide(s)));
    t.deepEqual(
      greedy.map((d) => d.action),
      qs.map((q) => argmaxQ(q)),
    );
    const c = config(1);
    await pool.configure({ ...c, inference: { ...c.inference, verdictMargin: margin } });
    const held = await Promise.all(states.map((s) => pool.decide(s)));
    t.deepEqual(
      held.map((d) => d.action),
      qs.map((q) => chooseAction(q, 0, margin)),
    );
    const heldBack = held.filter((d, i) => d.action !== greedy[i]!.action);
    t.true(heldBack.length >= leads.length / 3, `${heldBack.length} verdicts held back`);
    t.true(
      heldBack.every((d) => d.action <= 1),
      'held back = continue or raise isolation',
    );
  });
});

test('4.4: no model → the rule-based policy answers and an alert is raised', async (t) => {
  await withPool(1, async (pool) => {
    t.is(await pool.loadLatest(models()), 'rules');
    t.is(pool.alerts[0]?.reason, 'missing');
    const injection = new Float32Array(DIM);
    injection[12] = 0.5; // code_injection
    const d = await pool.decide(injection);
    t.is(d.modelVersion, 'rules');
    t.is(d.source, 'rules');
    t.is(d.action, 2, 'rule 1: code injection → TERMINATE');
  });
});

for (const [name, breakIt, reason] of [
  [
    'corrupt file',
    (dir: string, v: string) => {
      // Garbage whose checksum matches its metadata: ONNX Runtime itself must refuse it.
      const garbage = Buffer.from('not an onnx model at all');
      writeFileSync(modelFile(dir, v), garbage);
      const metaPath = join(dir, `drl_agent_${v}_metadata.json`);
      writeFileSync(
        metaPath,
        JSON.stringify({ ...JSON.parse(readFileSync(metaPath, 'utf8')), sha256: sha256(garbage) }),
      );
    },
    'corrupt',
  ],
  [
    'bad checksum',
    (dir: string, v: string) =>
      writeFileSync(join(dir, `drl_agent_${v}_metadata.json`), JSON.stringify({ sha256: '00' })),
    'checksum',
  ],
] as const) {
  test(`4.4: ${name} → refused with an alert (${reason}); the service keeps answering`, async (t) => {
    const dir = models();
    const { metadata } = await exportModel(dir, initParams([DIM, 8, 6], false, 1), draft);
    breakIt(dir, metadata.version);
    await withPool(1, async (pool) => {
      t.is(await pool.loadLatest(dir), 'rules');
      t.is(pool.alerts[0]?.reason, reason);
      t.is((await pool.decide(state(1))).modelVersion, 'rules');
    });
  });
}

test('4.4: a damaged latest model gives way to the newest version that loads, not the rule table', async (t) => {
  const dir = models();
  await exportModel(dir, initParams([DIM, 8, 6], false, 1), draft);
  const older = initParams([DIM, 8, 6], false, 2);
  const fallback = await exportModel(dir, older, draft);
  const latest = await exportModel(dir, initParams([DIM, 8, 6], false, 3), draft);
  writeFileSync(modelFile(dir, latest.metadata.version), 'damaged on disk');
  await withPool(1, async (pool) => {
    t.is(await pool.loadLatest(dir), fallback.metadata.version);
    t.like(pool.alerts[0], { reason: 'checksum', version: latest.metadata.version });
    const d = await pool.decide(state(3));
    t.is(d.modelVersion, fallback.metadata.version);
    t.is(d.action, argmaxQ(forward(older, state(3), 1)));
  });
});

test('4.4: a model of the wrong shape is refused and the current version keeps serving', async (t) => {
  const dir = models();
  const good = await exportModel(dir, initParams([DIM, 8, 6], false, 1), draft);
  const wrong = await exportModel(dir, initParams([DIM + 4, 8, 6], false, 2), draft);
  setLatest(dir, good.metadata.version);
  await withPool(1, async (pool) => {
    await pool.loadLatest(dir);
    t.false(await pool.activate(dir, wrong.metadata.version));
    t.is(pool.alerts[0]?.reason, 'shape');
    t.is(pool.activeVersion, good.metadata.version);
    t.is((await pool.decide(state(2))).modelVersion, good.metadata.version);
  });
});

test('property 18: hot reload under a continuous stream — nothing fails or is lost, versions switch once', async (t) => {
  const dir = models();
  const p1 = initParams([DIM, 16, 16, 6], false, 1);
  const p2: QNetParams = initParams([DIM, 16, 16, 6], false, 2);
  const v1 = await exportModel(dir, p1, draft);
  const v2 = await exportModel(dir, p2, draft, { makeLatest: false });
  await withPool(1, async (pool) => {
    await pool.loadLatest(dir);
    const answers: PoolDecision[] = [];
    let submitted = 0;
    let stop = false;
    let activatedAt = -1;
    const stream = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 16 }, (_, k) => pool.decide(state(submitted + k)));
        submitted += 16;
        answers.push(...(await Promise.all(batch)));
      }
    })();
    await new Promise((r) => setTimeout(r, 150));
    t.true(await pool.activate(dir, v2.metadata.version));
    activatedAt = submitted;
    await new Promise((r) => setTimeout(r, 150));
    stop = true;
    await stream;
    t.is(answers.length, submitted, 'every request answered');
    const versions = answers.map((a) => a.modelVersion);
    t.true(versions.every((v) => v === v1.metadata.version || v === v2.metadata.version));
    const firstNew = versions.indexOf(v2.metadata.version);
    t.true(firstNew > 0 && firstNew <= activatedAt + 16, 'the switch happened during the stream');
    t.true(
      versions.slice(firstNew).every((v) => v === v2.metadata.version),
      'one switch, never back',
    );
    answers.forEach((a, i) => {
      const params = a.modelVersion === v1.metadata.version ? p1 : p2;
      t.is(
        a.action,
        argmaxQ(forward(params, state(i), 1)),
        `answer ${i} came from the version it names`,
      );
    });

    t.is(await pool.rollback(dir), v1.metadata.version);
    t.is((await pool.decide(state(5))).modelVersion, v1.metadata.version);
  });
});

test('models exported by PyTorch (torch.onnx.export of the seed network) load and agree with PyTorch', async (t) => {
  const fixtures = new URL('../fixtures/models/', import.meta.url).pathname;
  const expected = JSON.parse(readFileSync(join(fixtures, 'pytorch-expected.json'), 'utf8')) as {
    states: number[][];
    q_values: number[][];
    actions: number[];
  };
  for (const file of ['pytorch-seed.onnx', 'pytorch-generic.onnx']) {
    const dir = models();
    const bytes = readFileSync(join(fixtures, file));
    const version = 'v1700000000000';
    writeFileSync(modelFile(dir, version), bytes);
    writeFileSync(
      join(dir, `drl_agent_${version}_metadata.json`),
      JSON.stringify({ version, sha256: sha256(bytes) }),
    );
    const pool = await InferencePool.start(
      testConfig({ telemetry: { stateDim: 64 }, inference: { workers: 1 } }),
    );
    try {
      t.is(await pool.loadLatest(dir), version, file);
      const got = await Promise.all(expected.states.map((s) => pool.decide(Float32Array.from(s))));
      t.deepEqual(
        got.map((d) => d.action),
        expected.actions,
        `${file}: same actions as PyTorch`,
      );
      for (const [i, d] of got.entries()) {
        t.true(d.qValues.every((v, a) => Math.abs(v - expected.q_values[i]![a]!) < 1e-4));
      }
    } finally {
      await pool.close();
    }
  }
});

test('Ed25519 provenance: a signed model serves; a tampered signature or an unsigned model (when required) is refused', async (t) => {
  const keys = generateSigningKeys();
  const other = generateSigningKeys();
  const keyDir = models();
  const publicKey = join(keyDir, 'public.pem');
  writeFileSync(publicKey, keys.publicKeyPem);
  const dir = models();
  const signed = await exportModel(dir, initParams([DIM, 8, 6], false, 1), draft, {
    signingKey: loadPrivateKey(keys.privateKeyPem),
  });
  const forged = await exportModel(dir, initParams([DIM, 8, 6], false, 2), draft, {
    signingKey: loadPrivateKey(other.privateKeyPem),
    makeLatest: false,
  });
  const unsigned = await exportModel(dir, initParams([DIM, 8, 6], false, 3), draft, {
    makeLatest: false,
  });
  t.truthy(signed.metadata.signature);
  const pool = await InferencePool.start(
    testConfig({ telemetry: { stateDim: DIM }, models: { publicKey, requireSignature: true } }),
  );
  try {
    t.is(await pool.loadLatest(dir), signed.metadata.version);
    t.false(await pool.activate(dir, forged.metadata.version));
    t.false(await pool.activate(dir, unsigned.metadata.version));
    t.deepEqual(
      pool.alerts.map((a) => a.reason),
      ['signature', 'signature'],
    );
    t.is(
      (await pool.decide(state(1))).modelVersion,
      signed.metadata.version,
      'the signed model keeps serving',
    );
  } finally {
    await pool.close();
  }
});

test('a crashed inference worker is respawned with the serving model and answers again', async (t) => {
  const dir = models();
  const params = initParams([DIM, 16, 6], false, 4);
  const { metadata } = await exportModel(dir, params, draft);
  const pool = await InferencePool.start(
    testConfig({ telemetry: { stateDim: DIM }, inference: { workers: 2 } }),
  );
  try {
    await pool.loadLatest(dir);
    await pool.killWorker(0);
    const until = Date.now() + 10_000;
    while (pool.restarts === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    t.is(pool.restarts, 1);
    // Enough requests that both rings (the respawned worker's too) are used.
    const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => pool.decide(state(i))));
    t.true(
      answers.every(
        (a, i) =>
          a.modelVersion === metadata.version && a.action === argmaxQ(forward(params, state(i), 1)),
      ),
    );
    const stats = await pool.stats();
    t.true(
      stats.workers.every((w) => w.decisions > 0),
      'both workers serve, the new one with the model it prepared',
    );
  } finally {
    await pool.close();
  }
});

test('a refused model shows where an operator looks: warden_model_refused on /metrics (WardenModelRefused), from the adapter on its worker thread', async (t) => {
  const dir = models();
  const fallback = await exportModel(dir, initParams([DIM, 8, 6], false, 1), draft);
  const latest = await exportModel(dir, initParams([DIM, 8, 6], false, 2), draft);
  writeFileSync(modelFile(dir, latest.metadata.version), 'tampered with');
  const system = new ActorSystem({
    config: testConfig({
      runtime: { placement: { hot: ['adapter'] } },
      telemetry: { stateDim: DIM },
      inference: { workers: 1 },
      models: { dir },
    }),
  });
  const inbox = new Inbox(system);
  await system.start();
  try {
    const activated = await inbox.waitFor((m) => m.type === 'model-activated');
    t.is((activated as unknown as ModelActivated).version, fallback.metadata.version);
    const body = await metricsRegistry(system).scrape();
    t.regex(body, /^warden_model_refused 1$/m);
    t.regex(body, /^warden_inference_worker_restarts 0$/m);
  } finally {
    await system.stop();
  }
});
