// The receiver's ledger (src/actors/receiver/ledger.ts): what a sandbox sends again after a cut —
// events it cannot know arrived, starts and outcomes of stages — goes no further than the
// receiver, and nothing sent once is held back. resume_after names each open stage at its last
// event accepted.

import test from 'ava';
import fc from 'fast-check';
import { StreamLedger } from '../../src/actors/receiver/ledger.ts';
import type { SandboxEvent, Stage, StageOutcome } from '../../src/messages/index.ts';
import { episodeIdAt, packEvents, seqAt, stageAt } from '../../src/messages/packed-telemetry.ts';
import { callEvent } from '../../src/telemetry/call-event.ts';
import { episodeStarted } from '../helpers.ts';

const telemetry = (episodeId: string, stage: Stage, seq: number): SandboxEvent =>
  callEvent(
    { sandboxId: 'sb', episodeId, stage, artifactHash: 'h', artifactType: 'exe' },
    seq,
    seq,
    'NtOpenFile',
  );
const outcome = (episodeId: string, stage: Stage): StageOutcome => ({
  type: 'stage-outcome',
  sandboxId: 'sb',
  episodeId,
  stage,
  timestamp: 0,
  eventsObserved: 0,
  sandboxDetected: false,
  cleaned: false,
  cleaningSucceeded: false,
  groundTruth: 'unknown',
  family: null,
});

/** What an event is, as a string: "start e1/1", "t e1/1/3", "end e1/1". */
const describe = (e: SandboxEvent) =>
  e.type === 'telemetry'
    ? `t ${e.episodeId}/${e.stage}/${e.seq}`
    : `${e.type === 'episode-started' ? 'start' : 'end'} ${e.episodeId}/${e.stage}`;

/** Each stage's events in order: its start, its telemetry, its outcome. */
function stageEvents(episodeId: string, stage: Stage, events: number): SandboxEvent[] {
  return [
    episodeStarted({ sandboxId: 'sb', episodeId, stage }),
    ...Array.from({ length: events }, (_, seq) => telemetry(episodeId, stage, seq)),
    outcome(episodeId, stage),
  ];
}

/** Passes `batches` through a ledger; returns what it let through, in order. */
function through(ledger: StreamLedger, batches: readonly SandboxEvent[][]): string[] {
  const out: string[] = [];
  for (const events of batches) {
    const packed = packEvents(events);
    const { telemetry: p, lifecycle } = ledger.accept(packed.telemetry, packed.lifecycle);
    let next = 0;
    for (let i = 0; i <= p.count; i++) {
      for (; next < lifecycle.length && lifecycle[next]!.at <= i; next++)
        out.push(describe(lifecycle[next]!.event));
      if (i < p.count) out.push(`t ${episodeIdAt(p, i)}/${stageAt(p, i)}/${seqAt(p, i)}`);
    }
  }
  return out;
}

test('whatever a sandbox sends again, each event passes once and in the order it was first sent', (t) => {
  fc.assert(
    fc.property(
      // A few stages, each with a few events, interleaved as a sandbox running them at once would.
      fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { minLength: 80, maxLength: 80 }),
      // Points where the sandbox goes back (as after a cut) and how far.
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 12 })), { maxLength: 6 }),
      fc.integer({ min: 1, max: 7 }),
      (lengths, picks, rewinds, batchSize) => {
        const queues = lengths.map((n, i) => stageEvents(`e${i}`, i % 2 === 0 ? 1 : 2, n));
        const sent: SandboxEvent[] = [];
        let p = 0;
        while (queues.some((q) => q.length > 0)) {
          const open = queues.filter((q) => q.length > 0);
          sent.push(open[picks[p++ % picks.length]! % open.length]!.shift()!);
        }
        const first = sent.map(describe);
        // The stream with parts sent again: at each rewind point, the `back` events before it
        // again — but not the start of a stage with telemetry or an outcome sent by then, which
        // would run it again (a sandbox resuming a stage does not start it again).
        const endedBy = (i: number) =>
          new Set(
            sent
              .slice(0, i + 1)
              .flatMap((e) => (e.type === 'episode-started' ? [] : [`${e.episodeId}/${e.stage}`])),
          );
        const stream: SandboxEvent[] = [];
        const cuts = new Map(rewinds.map(([at, back]) => [at % sent.length, back]));
        for (const [i, e] of sent.entries()) {
          stream.push(e);
          const back = cuts.get(i);
          if (back === undefined) continue;
          const ended = endedBy(i); // stages with more than their start sent
          stream.push(
            ...sent
              .slice(Math.max(0, i + 1 - back), i + 1)
              .filter(
                (x) => x.type !== 'episode-started' || !ended.has(`${x.episodeId}/${x.stage}`),
              ),
          );
        }
        const batches: SandboxEvent[][] = [];
        for (let i = 0; i < stream.length; i += batchSize)
          batches.push(stream.slice(i, i + batchSize));
        const ledger = new StreamLedger(1000);
        const passed = through(ledger, batches);
        t.deepEqual(passed, first);
        t.is(ledger.repeated, stream.length - sent.length);
        t.is(ledger.openStages, 0, 'every stage ended');
      },
    ),
  );
});

test('resume_after names each open stage at the last event accepted, started those with no event yet; an ended stage is in neither', (t) => {
  const ledger = new StreamLedger(1000);
  through(ledger, [
    [
      episodeStarted({ sandboxId: 'sb', episodeId: 'a', stage: 1 }),
      telemetry('a', 1, 0),
      telemetry('a', 1, 1),
      episodeStarted({ sandboxId: 'sb', episodeId: 'b', stage: 1 }),
      episodeStarted({ sandboxId: 'sb', episodeId: 'c', stage: 1 }),
      telemetry('c', 1, 0),
      outcome('c', 1),
      episodeStarted({ sandboxId: 'sb', episodeId: 'c', stage: 2 }),
      telemetry('c', 2, 4), // a sandbox may number a stage from anywhere
    ],
    [telemetry('a', 1, 2), telemetry('a', 1, 1)],
  ]);
  t.deepEqual(ledger.resumeAfter(), { 'a/1': 2, 'c/2': 4 });
  t.deepEqual(ledger.started(), ['b/1'], 'begun, nothing after its start: named in started');
  t.is(ledger.repeated, 1);
  // Stages idle longer than the episodes' timeout are left out (the sandbox may have restarted).
  t.deepEqual(ledger.resumeAfter(Date.now() + 60_000, 30_000), {});
  t.deepEqual(ledger.started(Date.now() + 60_000, 30_000), []);
  t.deepEqual(Object.keys(ledger.resumeAfter(Date.now(), Number.POSITIVE_INFINITY, 1)).length, 1);
});

test('a start for a stage with telemetry accepted, or ended, runs it again (a restarted sandbox may reuse ids); a start sent again before any telemetry, and events and outcomes of an ended stage, are dropped; open stages beyond the bound go oldest first, counted', (t) => {
  const ledger = new StreamLedger(2);
  const start = episodeStarted({ sandboxId: 'sb', episodeId: 'b', stage: 1 });
  const passed = through(ledger, [
    [...stageEvents('a', 1, 2), telemetry('a', 1, 1), outcome('a', 1), ...stageEvents('a', 1, 1)],
    [start, start, telemetry('b', 1, 0), telemetry('b', 1, 1), start, telemetry('b', 1, 0)],
    [telemetry('x', 1, 0), telemetry('y', 1, 0), telemetry('z', 1, 0)],
  ]);
  t.deepEqual(passed, [
    'start a/1',
    't a/1/0',
    't a/1/1',
    'end a/1',
    'start a/1',
    't a/1/0',
    'end a/1',
    'start b/1',
    't b/1/0',
    't b/1/1',
    'start b/1',
    't b/1/0',
    't x/1/0',
    't y/1/0',
    't z/1/0',
  ]);
  t.is(ledger.repeated, 3);
  t.is(ledger.evicted, 2);
  t.deepEqual(Object.keys(ledger.resumeAfter()).sort(), ['y/1', 'z/1']);
});

test('a ledger written down at a stop and read back at the next start names the same stages, and knows what it had accepted', (t) => {
  const ledger = new StreamLedger(1000);
  through(ledger, [
    [
      episodeStarted({ sandboxId: 'sb', episodeId: 'a', stage: 1 }),
      telemetry('a', 1, 0),
      telemetry('a', 1, 1),
      episodeStarted({ sandboxId: 'sb', episodeId: 'b', stage: 1 }),
      ...stageEvents('c', 1, 2),
    ],
  ]);
  const stoppedAt = Date.now();
  // Through JSON, as the file holds it; read back an hour later: the time down is not idle time.
  const back = StreamLedger.restore(
    JSON.parse(JSON.stringify(ledger.snapshot(stoppedAt))),
    1000,
    stoppedAt + 3_600_000,
  );
  const later = stoppedAt + 3_600_000 + 10;
  t.deepEqual(back.resumeAfter(later, 60_000), { 'a/1': 1 });
  t.deepEqual(back.started(later, 60_000), ['b/1']);
  // What the sandbox sends again is dropped as before the stop; what is new passes.
  t.deepEqual(
    through(back, [[telemetry('a', 1, 1), telemetry('a', 1, 2), outcome('c', 1), outcome('a', 1)]]),
    ['t a/1/2', 'end a/1'],
  );
  t.is(back.repeated, 2);
  t.is(StreamLedger.restore({ open: 'nonsense', ended: [3] }, 1000).openStages, 0);
});
