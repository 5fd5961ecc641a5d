// OpenTelemetry across threads: a reference sandbox over gRPC, receiver and dispatcher in one
// worker thread, the adapter in another, episodes and the DB writer in a third, a real
// PostgreSQL; spans go to an in-memory exporter in main (reset between tests). A complete
// two-stage episode is one trace: episode → stage 1 / stage 2 → decide and dispatch spans, and
// the DB write — from three threads.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import test from 'ava';
import { importCsv } from '../../src/data/import-csv.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { exporterFromEnv, parentFrom, traceparentOf } from '../../src/runtime/tracing.ts';
import { ReferenceSandbox } from '../../src/sandbox/reference-sandbox.ts';
import { startTestDatabase, type TestDatabase } from '../db-helpers.ts';
import { PIPELINE_PLACEMENT, testConfig, until } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const DATA = new URL('../../data/oliveira-balanced/', import.meta.url).pathname;
let db: TestDatabase;
const exporter = new InMemorySpanExporter();
test.before(async () => {
  db = await startTestDatabase();
});
test.beforeEach(() => exporter.reset());
test.after.always(async () => {
  await db?.stop();
});

test.serial(
  'a two-stage episode is one trace with the expected span tree across threads',
  async (t) => {
    const names = JSON.parse(readFileSync(join(DATA, 'api_names.json'), 'utf8'));
    const traces = importCsv(join(DATA, 'api_calls.csv'), { names }).traces;
    const malware = traces.filter((x) => x.episode.label === 'malicious').slice(0, 3);
    const benign = traces.filter((x) => x.episode.label === 'benign').slice(0, 3);
    const sandbox = new ReferenceSandbox({
      name: 'sb',
      traces: [...malware, ...benign],
      benign,
      episodes: 4,
      concurrency: 2,
      log: silentLogger,
      faults: { refuseActCalls: 1 },
    });
    const port = await sandbox.start();
    const system = new ActorSystem({
      config: testConfig({
        runtime: {
          placement: PIPELINE_PLACEMENT,
        },
        sandboxes: [{ name: 'sb', address: `127.0.0.1:${port}` }],
        dispatch: { retryDelaysMs: [20, 40] },
        database: {
          url: db.server.url,
          journalDir: tempDir('warden-trace-j-'),
        },
        models: { dir: tempDir('warden-trace-models-') },
        inference: { workers: 1 },
      }),
      // The system shuts its exporter down on stop; an in-memory one would forget its spans.
      traceExporter: {
        export: (s, done) => exporter.export(s, done),
        shutdown: async () => undefined,
      },
    });
    await system.start();
    try {
      t.true(await until(async () => sandbox.done, 60_000), 'the sandbox ran its episodes');
      t.true(
        await until(
          async () => exporter.getFinishedSpans().filter((s) => s.name === 'db.write').length === 4,
          15_000,
        ),
        'every episode written',
      );
    } finally {
      await system.stop();
      await sandbox.stop();
    }

    const spans = exporter.getFinishedSpans();
    const byTrace = new Map<string, ReadableSpan[]>();
    for (const s of spans)
      byTrace.set(s.spanContext().traceId, [...(byTrace.get(s.spanContext().traceId) ?? []), s]);

    const episodes = spans.filter((s) => s.name === 'episode');
    t.is(episodes.length, 4, 'one episode span per episode');
    t.is(byTrace.size, 4, 'one trace per episode, nothing outside them');

    for (const root of episodes) {
      const tree = byTrace.get(root.spanContext().traceId)!;
      const id = (s: ReadableSpan) => s.spanContext().spanId;
      const children = (p: ReadableSpan) =>
        tree.filter((s) => s.parentSpanContext?.spanId === id(p));
      t.is(root.parentSpanContext, undefined, 'the episode span is the root');
      t.is(root.attributes['warden.outcome'], 'completed');
      const stages = children(root).filter((s) => s.name.startsWith('stage '));
      t.deepEqual(stages.map((s) => s.name).sort(), ['stage 1', 'stage 2']);
      for (const stage of stages) {
        const below = children(stage);
        t.true(
          below.some((s) => s.name === 'decide'),
          `${stage.name} has decision batches`,
        );
        t.true(
          below.some((s) => s.name === 'dispatch'),
          `${stage.name} has dispatches`,
        );
        t.true(below.every((s) => s.name === 'decide' || s.name === 'dispatch'));
        const decided = below
          .filter((s) => s.name === 'decide')
          .reduce((n, s) => n + Number(s.attributes['warden.decisions']), 0);
        const dispatched = below
          .filter((s) => s.name === 'dispatch')
          .reduce((n, s) => n + Number(s.attributes['warden.actions']), 0);
        t.is(decided, dispatched, 'every decision dispatched within the trace');
      }
      const writes = children(root).filter((s) => s.name === 'db.write');
      t.is(writes.length, 1, 'the DB write belongs to the episode');
      t.is(writes[0]!.attributes['warden.outcome'], 'persisted');
      const threads = new Set(tree.map((s) => s.attributes['thread.name']));
      t.deepEqual(
        [...threads].sort(),
        ['control', 'hot', 'io'],
        'spans from three threads in one trace',
      );
    }
    const retried = spans.filter(
      (s) => s.name === 'dispatch' && s.events.some((e) => e.name === 'retry'),
    );
    t.true(retried.length > 0, 'the refused Act call shows as retry events on its dispatch spans');
    t.true(
      retried.every((s) => s.status.code === 1),
      'and they succeeded after the retry',
    );
  },
);

test('traceparent round trip, and OTLP export only when the standard variables ask for it', async (t) => {
  const parent = parentFrom('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  t.truthy(parent);
  t.is(parentFrom('garbage'), parentFrom(undefined), 'malformed → root context');
  t.is(traceparentOf(undefined), undefined);
  t.is(await exporterFromEnv({}), undefined, 'off by default');
  t.is(
    await exporterFromEnv({
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x',
    }),
    undefined,
  );
  t.is(
    await exporterFromEnv({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }),
    undefined,
  );
  const otlp = await exporterFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
  t.is(otlp?.constructor.name, 'OTLPTraceExporter');
  await otlp?.shutdown();
});
