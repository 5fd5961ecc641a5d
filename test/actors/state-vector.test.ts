// The adapter's state vector: property 2 (always the configured dimension, every value in
// [0, 1]) over arbitrary validated telemetry, and the features a reader would expect to move.

import test from 'ava';
import fc from 'fast-check';
import {
  FIXED_FEATURES,
  featureNames,
  StateAccumulator,
} from '../../src/actors/adapter/state-vector.ts';
import { callEvent } from '../../src/telemetry/call-event.ts';
import { DefaultsCounter } from '../../src/validation/defaults-counter.ts';
import { validateTelemetry } from '../../src/validation/telemetry.ts';

const limits = { maxEventBytes: 65_536, maxStringLength: 256, maxArrayLength: 64, maxDepth: 8 };
const ctx = {
  sandboxId: 's',
  episodeId: 'e',
  stage: 1 as const,
  artifactHash: 'h',
  artifactType: 'exe' as const,
};

test('property 2: any sequence of (even malformed) telemetry gives a vector of the configured dimension in [0, 1]', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 32, max: 100 }),
      fc.array(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            syscallCount: fc.double(),
            cpuUsage: fc.double(),
            memoryUsage: fc.double(),
            api: fc.record({ name: fc.string(), category: fc.string() }),
          }),
        ),
        { maxLength: 40 },
      ),
      fc.integer({ min: 1, max: 500 }),
      fc.integer({ min: -5, max: 10 }),
      (dim, raws, horizon, isolation) => {
        const acc = new StateAccumulator(dim, horizon);
        for (const raw of raws) {
          try {
            acc.add(validateTelemetry(raw, { limits, counter: new DefaultsCounter() }));
          } catch {
            // rejected input never reaches the adapter
          }
        }
        const v = acc.vector(2, isolation, true);
        return v.length === dim && v.every((x) => x >= 0 && x <= 1 && !Number.isNaN(x));
      },
    ),
    { numRuns: 300 },
  );
  t.is(featureNames(64).length, 64);
  t.throws(() => new StateAccumulator(16, 100), { message: /32\.\.100/ });
});

test('features follow behaviour: registry writes, injection, categories, progress, stage and isolation', (t) => {
  const names = featureNames(64);
  const at = (n: string) => names.indexOf(n);
  const acc = new StateAccumulator(64, 100);
  const before = acc.vector(1, 0, false);
  t.true(
    before.every((x) => x === 0),
    'an empty stage-1 state is all zeros',
  );
  acc.add(callEvent(ctx, 0, 1, 'RegSetValueExW'));
  acc.add(callEvent(ctx, 1, 2, 'WriteProcessMemory'));
  acc.add(callEvent(ctx, 2, 3, 'CreateRemoteThread'));
  const v = acc.vector(2, 3, true);
  t.true(v[at('registry_modification')]! > 0);
  t.true(
    v[at('code_injection')]! > v[at('registry_modification')]!,
    'two injection calls weigh more than one registry write',
  );
  t.true(v[at('api_registry')]! > 0 && v[at('api_memory')]! > 0 && v[at('api_process')]! > 0);
  t.is(v[at('api_network')], 0);
  t.is(v[at('progress')], Math.fround(0.03));
  t.is(v[at('stage')], 1);
  t.is(v[at('isolation')], 1);
  t.is(v[at('cleaned')], 1);
  const hashed = v.subarray(FIXED_FEATURES);
  t.true(
    hashed.some((x) => x > 0),
    'hashed names and bigrams are set',
  );
});

test('the same calls in another order differ only in the bigram features', (t) => {
  const a = new StateAccumulator(64, 100);
  const b = new StateAccumulator(64, 100);
  const calls = ['NtOpenFile', 'NtReadFile', 'connect', 'send'];
  for (const [i, c] of calls.entries()) a.add(callEvent(ctx, i, i, c));
  for (const [i, c] of [...calls].reverse().entries()) b.add(callEvent(ctx, i, i, c));
  const va = a.vector(1, 0, false);
  const vb = b.vector(1, 0, false);
  const names = featureNames(64);
  const differing = names.filter((_, i) => va[i] !== vb[i]);
  t.true(differing.length > 0);
  t.true(
    differing.every((n) => n.startsWith('api_bigram_bucket_')),
    differing.join(', '),
  );
});

test('each counter of an event moves its own feature and no other', (t) => {
  const names = featureNames(64);
  const fields = {
    syscallCount: 'syscalls',
    fileReadCount: 'file_reads',
    fileWriteCount: 'file_writes',
    fileDeleteCount: 'file_deletes',
    networkConnections: 'network_connections',
    bytesSent: 'bytes_sent',
    bytesReceived: 'bytes_received',
    childProcesses: 'child_processes',
    cpuUsage: 'cpu',
    memoryUsage: 'memory',
    registryModification: 'registry_modification',
    privilegeEscalation: 'privilege_escalation',
    codeInjection: 'code_injection',
  } as const;
  for (const [field, feature] of Object.entries(fields)) {
    const acc = new StateAccumulator(64, 100);
    const e = validateTelemetry(
      { episodeId: 'e', [field]: /^(registry|privilege|code)_/.test(feature) ? true : 7 },
      { limits, counter: new DefaultsCounter() },
    );
    acc.add(e);
    const v = acc.vector(1, 0, false);
    const moved = names.filter((n, i) => v[i] !== 0 && n !== 'progress');
    t.deepEqual(moved, [feature], field);
  }
});

test('a running state written down at a stop and read back goes on as if there had been no stop', (t) => {
  const apis = ['NtOpenFile', 'NtWriteFile', 'RegSetValueExW', 'NtClose', 'connect', 'NtClose'];
  const whole = new StateAccumulator(64, 100);
  const before = new StateAccumulator(64, 100);
  apis.slice(0, 3).forEach((api, seq) => {
    whole.add(callEvent(ctx, seq, seq, api));
    before.add(callEvent(ctx, seq, seq, api));
  });
  const back = StateAccumulator.restore(JSON.parse(JSON.stringify(before.snapshot())), 64, 100);
  t.truthy(back);
  apis.slice(3).forEach((api, i) => {
    whole.add(callEvent(ctx, 3 + i, 3 + i, api));
    back!.add(callEvent(ctx, 3 + i, 3 + i, api));
  });
  t.deepEqual(back!.vector(1, 1, false), whole.vector(1, 1, false), 'bigrams across the stop too');
  t.is(
    StateAccumulator.restore(before.snapshot(), 80, 100),
    undefined,
    'another layout: not taken',
  );
  t.is(StateAccumulator.restore({ dim: 64, horizon: 100, sums: 'x' }, 64, 100), undefined);
});
