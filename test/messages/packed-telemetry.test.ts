// The receiver → adapter form of a batch: telemetry in columns, lifecycle events placed among it.
// Read back the way the adapter reads it, a batch gives the events in the order sent, each with
// its episode, stage, sequence number and API call, and the same state vectors as the objects.

import test from 'ava';
import fc from 'fast-check';
import { StateAccumulator } from '../../src/actors/adapter/state-vector.ts';
import type { SandboxEvent } from '../../src/messages/index.ts';
import {
  apiNameAt,
  COLUMNS,
  episodeIdAt,
  packEvents,
  seqAt,
  stageAt,
} from '../../src/messages/packed-telemetry.ts';
import { callEvent } from '../../src/telemetry/call-event.ts';
import { episodeStarted } from '../helpers.ts';

const API = ['NtCreateFile', 'RegSetValueExW', 'connect', 'CreateRemoteThread', 'NtClose'];

const eventArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record({
        episode: fc.integer({ min: 0, max: 3 }),
        stage: fc.constantFrom(1 as const, 2 as const),
        seq: fc.nat(1000),
        api: fc.constantFrom(...API),
      })
      .map(
        (r): SandboxEvent =>
          callEvent(
            {
              sandboxId: 's',
              episodeId: `ep-${r.episode}`,
              stage: r.stage,
              artifactHash: 'h',
              artifactType: 'exe',
            },
            r.seq,
            1_764_000_000_000 + r.seq,
            r.api,
          ),
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ episode: fc.integer({ min: 0, max: 3 }), stage: fc.constantFrom(1, 2) })
      .map((r) =>
        episodeStarted({ sandboxId: 's', episodeId: `ep-${r.episode}`, stage: r.stage as 1 | 2 }),
      ),
  },
);

test('a packed batch reads back in the order sent, with the same fields and state vectors', (t) => {
  fc.assert(
    fc.property(fc.array(eventArb, { maxLength: 80 }), (events) => {
      const { telemetry: p, lifecycle } = packEvents(events);
      // Read as the adapter does: lifecycle events at or before telemetry row i come first.
      const order: string[] = [];
      const byStage = new Map<string, StateAccumulator>();
      let next = 0;
      for (let i = 0; i <= p.count; i++) {
        for (; next < lifecycle.length && lifecycle[next]!.at <= i; next++)
          order.push(`${lifecycle[next]!.event.type} ${lifecycle[next]!.event.episodeId}`);
        if (i === p.count) break;
        order.push(
          `telemetry ${episodeIdAt(p, i)} ${stageAt(p, i)} ${seqAt(p, i)} ${apiNameAt(p, i)}`,
        );
        const k = `${episodeIdAt(p, i)}/${stageAt(p, i)}`;
        if (!byStage.has(k)) byStage.set(k, new StateAccumulator(64, 100));
        byStage.get(k)!.addColumns(p.numbers, i * COLUMNS, apiNameAt(p, i));
      }
      const expected = events.map((e) =>
        e.type === 'telemetry'
          ? `telemetry ${e.episodeId} ${e.stage} ${e.seq} ${e.api?.name ?? null}`
          : `${e.type} ${e.episodeId}`,
      );
      t.deepEqual(order, expected);
      for (const [k, acc] of byStage) {
        const [episodeId, stage] = k.split('/');
        const objects = new StateAccumulator(64, 100);
        for (const e of events)
          if (e.type === 'telemetry' && e.episodeId === episodeId && String(e.stage) === stage)
            objects.add(e);
        t.deepEqual(acc.vector(1, 0, false), objects.vector(1, 0, false), k);
      }
      // Each string once per batch.
      t.is(new Set(p.strings).size, p.strings.length);
    }),
    { numRuns: 200 },
  );
});
