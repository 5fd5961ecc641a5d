// Telemetry is attacker-controlled: a sample that floods one sandbox cannot starve another
// sandbox's decisions (the adapter serves sandboxes, then episodes, round robin) and cannot grow
// work without bound (per-stage event limit). The real adapter and inference pool on worker
// threads; decisions are observed in the order they leave the adapter — order, not timing.

import test from 'ava';
import {
  DECISION_SUMMARIES,
  LOST_AFTER_MS,
  type Pending,
  requeueLost,
} from '../../src/actors/adapter/index.ts';
import { ACTOR_MODULES } from '../../src/actors/index.ts';
import type { ActionDecision } from '../../src/messages/action.ts';
import type { StageOutcome } from '../../src/messages/episode.ts';
import { FairQueue } from '../../src/runtime/fair-queue.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { callEvent } from '../../src/telemetry/call-event.ts';
import {
  dispatchedDecisions,
  episodeStarted,
  fixtureActor,
  Inbox,
  sandboxBatch,
  testConfig,
  until,
} from '../helpers.ts';

const events = (sandbox: string, episodeId: string, n: number) =>
  Array.from({ length: n }, (_, i) =>
    callEvent(
      { sandboxId: sandbox, episodeId, stage: 1, artifactHash: episodeId, artifactType: 'exe' },
      i,
      i,
      i % 2 === 0 ? 'NtQuerySystemTime' : 'GetTickCount',
    ),
  );

async function withAdapter(
  telemetry: object,
  run: (system: ActorSystem, decisions: ActionDecision[]) => Promise<void>,
) {
  const system = new ActorSystem({
    config: testConfig({
      runtime: { placement: { inference: ['adapter'], sinks: ['dispatcher', 'episodes'] } },
      inference: { workers: 1, ringCapacity: 64, maxBatch: 16 },
      models: { dir: '/nonexistent-models-dir' },
      telemetry,
    }),
    modules: {
      ...ACTOR_MODULES,
      dispatcher: fixtureActor('sink'),
      episodes: fixtureActor('sink'),
    },
  });
  const decisions = dispatchedDecisions(system);
  const inbox = new Inbox(system);
  await system.start();
  await inbox.waitFor((m) => m.type === 'model-activated');
  try {
    await run(system, decisions);
  } finally {
    await system.stop();
  }
}

const batch = (sandbox: string, episodeId: string, n: number) =>
  sandboxBatch(sandbox, events(sandbox, episodeId, n));

test('a flooding sandbox cannot delay another sandbox beyond its fair share', async (t) => {
  await withAdapter({ horizon: 1_000_000 }, async (system, decisions) => {
    system.send('adapter', batch('flooder', 'flood-1', 5_000));
    system.send('adapter', batch('quiet', 'quiet-1', 20));
    t.true(
      await until(async () => decisions.length >= 5_020, 60_000),
      `${decisions.length} decisions`,
    );
    const lastQuiet = decisions.findLastIndex((d) => d.sandboxId === 'quiet');
    const floodBefore = decisions
      .slice(0, lastQuiet)
      .filter((d) => d.sandboxId === 'flooder').length;
    // In first-come order the quiet sandbox would wait for all 5,000. Fair share: what the pool's
    // ring (64) and a few pump rounds already held when the quiet batch arrived, then one turn each.
    t.true(
      floodBefore <= 4 * 64,
      `${floodBefore} flood decisions went before the quiet sandbox's last`,
    );
    t.is(decisions.filter((d) => d.sandboxId === 'quiet').length, 20, 'every quiet event decided');
  });
});

test('a stage past telemetry.maxEventsPerStage is counted, not decided on', async (t) => {
  await withAdapter({ maxEventsPerStage: 100 }, async (system, decisions) => {
    system.send('adapter', batch('flooder', 'flood-2', 300));
    system.send('adapter', batch('quiet', 'quiet-2', 10));
    t.true(await until(async () => decisions.length >= 110));
    await new Promise((r) => setTimeout(r, 300));
    t.is(decisions.filter((d) => d.episodeId === 'flood-2').length, 100);
    t.is(decisions.filter((d) => d.episodeId === 'quiet-2').length, 10);
    const stats = await system.stats();
    const adapter = stats.threads.flatMap((th) => th.actors).find((a) => a.actor === 'adapter');
    t.is(adapter?.custom.overStageLimit, 200);
  });
});

test('decisions still in the pool when their stage ends are dropped and counted, apart from those after a verdict', async (t) => {
  await withAdapter({}, async (system, decisions) => {
    const ctx = { sandboxId: 'fast', episodeId: 'over-1', stage: 1 as const };
    const outcome: StageOutcome = {
      type: 'stage-outcome',
      ...ctx,
      timestamp: 0,
      eventsObserved: 40,
      sandboxDetected: false,
      cleaned: false,
      cleaningSucceeded: false,
      groundTruth: 'benign',
      family: null,
    };
    // A sandbox faster than Warden: the whole stage and its outcome in one batch.
    system.send('adapter', sandboxBatch('fast', [...events('fast', 'over-1', 40), outcome]));
    system.send('adapter', batch('slow', 'after-1', 10));
    t.true(await until(async () => decisions.length >= 10));
    const adapter = async () =>
      (await system.stats()).threads.flatMap((th) => th.actors).find((a) => a.actor === 'adapter')!
        .custom;
    t.true(await until(async () => (await adapter()).droppedStageOver === 40));
    t.is(
      decisions.filter((d) => d.episodeId === 'over-1').length,
      0,
      'nothing sent for a stage that is over',
    );
    t.is((await adapter()).ignoredAfterVerdict, 0);
  });
});

test('an episode that never ends is closed at dispatch.maxEpisodeDurationMs and stored as partial', async (t) => {
  const system = new ActorSystem({
    config: testConfig({
      runtime: { placement: { episodes: ['episodes'], sinks: ['db-writer', 'learner'] } },
      dispatch: { episodeTimeoutMs: 60_000, maxEpisodeDurationMs: 1_000 },
    }),
    modules: { ...ACTOR_MODULES, 'db-writer': fixtureActor('sink'), learner: fixtureActor('sink') },
  });
  const inbox = new Inbox(system);
  await system.start();
  try {
    // The sample keeps the episode busy: it is never silent, it just never ends.
    system.send('episodes', episodeStarted({ sandboxId: 's', episodeId: 'endless', stage: 1 }));
    let seq = 0;
    const busy = setInterval(
      () =>
        system.send('episodes', {
          type: 'decisions',
          items: DECISION_SUMMARIES.pack([
            {
              episodeId: 'endless',
              stage: 1,
              seq: seq++,
              action: 0,
              confidence: 0.5,
              modelVersion: 'rules',
              source: 'rules',
              decidedAt: Date.now(),
              latencyMs: 1,
            },
          ]),
          states: new Float32Array(64),
        }),
      100,
    );
    t.teardown(() => clearInterval(busy));
    const stored = (await inbox.waitFor(
      (m) => m.type === 'sunk' && (m.message as { type: string }).type === 'episode-trajectory',
      10_000,
    )) as unknown as { message: { episodeId: string; partial: boolean; failureReason: string } };
    t.is(stored.message.episodeId, 'endless');
    t.true(stored.message.partial);
    t.regex(stored.message.failureReason, /^duration limit: still running after 1000 ms/);
  } finally {
    await system.stop();
  }
});

test('requests an inference worker took with it when it died are decided again; answered and recent ones stay', (t) => {
  const pending = new Map<number, Pending>();
  const backlog = new FairQueue<Pending>();
  const request = (episodeId: string, submittedAt: number): Pending => ({
    sandbox: 'lab',
    slot: 0,
    episodeId,
    stage: 1,
    seq: 0,
    state: new Float32Array(4),
    receivedAt: 0,
    submittedAt,
  });
  const now = 100_000;
  pending.set(1, request('lost-a', now - LOST_AFTER_MS - 1));
  pending.set(2, request('lost-b', now - LOST_AFTER_MS));
  pending.set(3, request('recent', now - 10));
  t.is(requeueLost(pending, backlog, now), 2);
  t.deepEqual([...pending.keys()], [3], 'the recent request still waits for its answer');
  t.deepEqual(
    [backlog.shift()?.episodeId, backlog.shift()?.episodeId, backlog.shift()],
    ['lost-a', 'lost-b', undefined],
    'the lost ones are back in the backlog, in order',
  );
  t.is(requeueLost(pending, backlog, now), 0, 'nothing else is old enough');
});
