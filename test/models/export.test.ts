// Export: properties 11–15 (ONNX written, loads in ONNX Runtime with the network's Q-values,
// metadata complete, timestamps strictly increase, a failed export leaves the previous model),
// rollback, and property 29 (training continues from the exported weights).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { OnnxPolicy } from '../../src/actors/inference/onnx-policy.ts';
import { hyperParameters } from '../../src/actors/learner/hyper-parameters.ts';
import { forward, initParams } from '../../src/actors/learner/q-network.ts';
import { readPolicyParams } from '../../src/models/read-params.ts';
import {
  exportModel,
  latestVersion,
  listVersions,
  type MetadataDraft,
  pruneVersions,
  readMetadata,
  rollback,
  setLatest,
  sha256,
} from '../../src/models/store.ts';
import { argmax } from '../../src/training/evaluate.ts';
import { train } from '../../src/training/train.ts';
import { recordedTrace, testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const dir = () => tempDir('warden-models-');
const draft: MetadataDraft = {
  hyperParameters: hyperParameters(testConfig()),
  trainingEpisodes: 10,
  metrics: {
    finalLoss: 0.1,
    averageReward: 0.5,
    detectionAccuracy: 0.9,
    falsePositiveRate: 0.1,
    falseNegativeRate: 0.1,
  },
  engine: 'test',
};

for (const dueling of [false, true]) {
  test(`properties 11–13: an export writes an ONNX model that gives the network's Q-values and actions, with complete metadata (dueling=${dueling})`, async (t) => {
    const d = dir();
    const params = initParams([64, 32, 32, 6], dueling, 11);
    const { metadata, path, maxDiff } = await exportModel(d, params, draft);
    t.true(maxDiff <= 1e-4);
    t.is(readFileSync(join(d, 'latest'), 'utf8').trim(), metadata.version);
    const saved = readMetadata(d, metadata.version);
    for (const key of [
      'version',
      'timestamp',
      'stateDim',
      'actionCount',
      'hyperParameters',
      'trainingEpisodes',
      'metrics',
      'sha256',
      'engine',
      'inputName',
      'outputName',
    ] as const) {
      t.not(saved[key], undefined, `metadata has ${key}`);
    }
    t.is(saved.sha256, sha256(readFileSync(path)));
    t.is(saved.hyperParameters.learningRate, 1e-3);
    const policy = await OnnxPolicy.load(path, 64, 6, saved.sha256);
    const states = Float32Array.from({ length: 64 * 50 }, (_, i) => ((i * 7919) % 1000) / 1000);
    const q = await policy.qValues(states, 50);
    const want = forward(params, states, 50);
    for (let r = 0; r < 50; r++)
      t.is(argmax(q, r * 6), argmax(want, r * 6), `row ${r}: same action`);
    await policy.release();
  });
}

test('property 14: version timestamps strictly increase, even within one millisecond', async (t) => {
  const d = dir();
  const params = initParams([32, 8, 6], false, 1);
  const now = 1_700_000_000_000;
  const versions: number[] = [];
  for (let i = 0; i < 4; i++)
    versions.push((await exportModel(d, params, draft, { now })).metadata.timestamp);
  t.deepEqual(versions, [now, now + 1, now + 2, now + 3]);
  t.deepEqual(
    listVersions(d),
    versions.map((v) => `v${v}`),
  );
});

test('property 15: a failed export is refused and the previous model stays in place', async (t) => {
  const d = dir();
  const params = initParams([32, 8, 6], false, 1);
  const first = await exportModel(d, params, draft);
  const before = readdirSync(d).sort();
  await t.throwsAsync(exportModel(d, params, draft, { mutate: (b) => b.slice(0, b.length / 2) }), {
    code: 'WARDEN_MODEL_EXPORT',
  });
  const nan = {
    ...params,
    tensors: params.tensors.map((x, i) => (i === 0 ? x.map(() => Number.NaN) : x)),
  };
  await t.throwsAsync(exportModel(d, nan, draft), {
    code: 'WARDEN_MODEL_EXPORT',
    message: /differ/,
  });
  t.deepEqual(readdirSync(d).sort(), before, 'no file appeared');
  t.is(latestVersion(d), first.metadata.version);
});

test('rollback points latest at the previous version; a tampered file fails its sha256 check', async (t) => {
  const d = dir();
  const a = await exportModel(d, initParams([32, 8, 6], false, 1), draft);
  const b = await exportModel(d, initParams([32, 8, 6], false, 2), draft);
  t.is(latestVersion(d), b.metadata.version);
  t.is(rollback(d), a.metadata.version);
  t.is(latestVersion(d), a.metadata.version);
  t.throws(() => rollback(d), { code: 'WARDEN_MODEL_NOT_FOUND' });
  // latest left pointing at a version whose files are gone: back to the newest one before it.
  const c = await exportModel(d, initParams([32, 8, 6], false, 3), draft);
  setLatest(d, `v${c.metadata.timestamp + 5}`);
  t.is(rollback(d), c.metadata.version);
  setLatest(d, 'not-a-version');
  t.is(rollback(d), c.metadata.version, 'a pointer naming no version goes to the newest');
  await t.throwsAsync(OnnxPolicy.load(b.path, 32, 6, a.metadata.sha256), {
    code: 'WARDEN_MODEL_LOAD',
    message: /sha256/,
  });
});

test('property 29: training resumes from an exported model and keeps learning without starting over', async (t) => {
  const config = testConfig({
    telemetry: { stateDim: 32 },
    learning: { hiddenUnits: [16, 16], epsilonStart: 0.2 },
  });
  const mk = recordedTrace;
  const traces = [
    mk('m', 'malicious', ['WriteProcessMemory', 'CreateRemoteThread', 'connect', 'send']),
    mk('g', 'benign', ['GetTickCount', 'NtClose', 'GetSystemTime', 'NtClose']),
  ];
  const first = await train({ traces, config, episodes: 30, seed: 3 });
  const d = dir();
  const { path } = await exportModel(d, first.params, draft);
  const resumed = readPolicyParams(readFileSync(path));
  t.deepEqual(resumed.dims, first.params.dims);
  t.true(
    resumed.tensors.every((x, i) => x.every((v, k) => v === first.params.tensors[i]![k])),
    'weights read back exactly',
  );
  const second = await train({ traces, config, episodes: 30, seed: 4, initial: resumed });
  t.true(second.metrics.updates > 0);
  t.false(
    second.params.tensors.every((x, i) => x.every((v, k) => v === resumed.tensors[i]![k])),
    'new data changed the weights',
  );
  const fresh = initParams(second.params.dims, false, 4);
  const distance = (p: typeof fresh) =>
    p.tensors.reduce(
      (s, x, i) => s + x.reduce((a, v, k) => a + Math.abs(v - resumed.tensors[i]![k]!), 0),
      0,
    );
  t.true(
    distance(second.params) < distance(fresh),
    'the resumed network stayed near what was learned',
  );
});

test('old versions are pruned down to the number kept, never the one latest points at', async (t) => {
  const d = dir();
  const params = initParams([32, 8, 6], false, 1);
  const now = Date.now();
  const versions: string[] = [];
  for (let i = 0; i < 5; i++)
    versions.push((await exportModel(d, params, draft, { now: now + i })).metadata.version);
  // A rollback put latest on the oldest version: it stays, the next oldest go.
  setLatest(d, versions[0]!);
  t.deepEqual(pruneVersions(d, 3), [versions[1], versions[2]]);
  t.deepEqual(listVersions(d), [versions[0], versions[3], versions[4]]);
  t.false(
    readdirSync(d).some((f) => f.includes(versions[1]!.slice(1))),
    'model and metadata go',
  );
  t.is(latestVersion(d), versions[0]);
  t.deepEqual(pruneVersions(d, 3), [], 'nothing more while within the number kept');
  t.deepEqual(pruneVersions(d, 0), [], 'keepVersions 0 keeps all');
  t.is(listVersions(d).length, 3);
});
