// Property 32 end to end: a model version that decides worse than the one before it raises the
// degradation alert, and with alerts.autoRollback the inference pool switches back at once. The
// real adapter, inference pool (ONNX Runtime) and episodes actor on worker threads; two real
// exported models — one that releases every file, one that terminates every file — judged on
// benign episodes.

import test from 'ava';
import type { DegradationAlert } from '../../src/actors/episodes/degradation.ts';
import { ACTOR_MODULES } from '../../src/actors/index.ts';
import { initParams } from '../../src/actors/learner/q-network.ts';
import { ACTIONS, type ActionId } from '../../src/messages/action.ts';
import type { SandboxEvent } from '../../src/messages/index.ts';
import type { ModelActivated, ModelPublished } from '../../src/messages/model.ts';
import { exportModel, modelFile, setLatest } from '../../src/models/store.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { callEvent } from '../../src/telemetry/call-event.ts';
import {
  dispatchedDecisions,
  episodeStarted,
  fixtureActor,
  Inbox,
  modelDraft,
  sandboxBatch,
  testConfig,
  until,
} from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const DIM = 64;

/** A real exported model whose Q-values always make `action` the best. */
async function modelThatAlways(dir: string, action: ActionId, seed: number) {
  const params = initParams([DIM, 8, 6], false, seed);
  params.tensors[2]!.fill(0);
  params.tensors[3]!.fill(0);
  params.tensors[3]![action] = 5;
  return (await exportModel(dir, params, modelDraft())).metadata;
}

test('a degraded version raises the alert and is rolled back automatically', async (t) => {
  const dir = tempDir('warden-degrade-');
  const good = await modelThatAlways(dir, ACTIONS.RELEASE, 1);
  await new Promise((r) => setTimeout(r, 5)); // versions are named by time
  const bad = await modelThatAlways(dir, ACTIONS.TERMINATE, 2);
  setLatest(dir, good.version);

  const system = new ActorSystem({
    config: testConfig({
      runtime: {
        placement: {
          hot: ['adapter'],
          control: ['episodes'],
          sinks: ['dispatcher', 'db-writer', 'learner'],
        },
      },
      telemetry: { stateDim: DIM },
      inference: { workers: 1 },
      models: { dir },
      alerts: { window: 20, minEpisodes: 5, maxAccuracyDrop: 0.2, autoRollback: true },
    }),
    modules: {
      ...ACTOR_MODULES,
      dispatcher: fixtureActor('sink'),
      'db-writer': fixtureActor('sink'),
      learner: fixtureActor('sink'),
    },
  });
  const decisions = dispatchedDecisions(system);
  const inbox = new Inbox(system);
  await system.start();

  let n = 0;
  const send = (events: SandboxEvent[]) => system.send('adapter', sandboxBatch('lab', events));
  /** One benign stage-1 episode: telemetry, the model's decision, then the sandbox's outcome. */
  const benignEpisode = async () => {
    const base = { sandboxId: 'lab', episodeId: `ep-${++n}`, stage: 1 as const };
    send([
      episodeStarted(base),
      ...[0, 1, 2].map((i) =>
        callEvent({ ...base, artifactHash: 'h', artifactType: 'exe' }, i, i, 'NtClose'),
      ),
    ]);
    t.true(await until(async () => decisions.some((d) => d.episodeId === base.episodeId)));
    send([
      {
        type: 'stage-outcome',
        ...base,
        timestamp: Date.now(),
        eventsObserved: 3,
        sandboxDetected: false,
        cleaned: false,
        cleaningSucceeded: false,
        groundTruth: 'benign',
        family: null,
      },
    ]);
    return decisions.find((d) => d.episodeId === base.episodeId)!;
  };

  try {
    const started = (await inbox.waitFor(
      (m) => m.type === 'model-activated',
    )) as unknown as ModelActivated;
    t.is(started.version, good.version);
    for (let i = 0; i < 6; i++) t.is((await benignEpisode()).action, ACTIONS.RELEASE);

    const published: ModelPublished = {
      type: 'model-published',
      metadata: bad,
      path: modelFile(dir, bad.version),
    };
    system.send('adapter', published);
    await inbox.waitFor((m) => m.type === 'model-activated' && m.version === bad.version);
    for (let i = 0; i < 5; i++) {
      const d = await benignEpisode();
      t.is(d.context.modelVersion, bad.version);
      t.is(d.action, ACTIONS.TERMINATE, 'the new version terminates goodware');
    }

    const alert = (await inbox.waitFor(
      (m) => m.type === 'model-degraded',
    )) as unknown as DegradationAlert;
    t.is(alert.version, bad.version);
    t.is(alert.previousVersion, good.version);
    t.is(alert.accuracy, 0);
    t.is(alert.previousAccuracy, 1);
    const rolledBack = (await inbox.waitFor(
      (m) => m.type === 'model-activated' && m.reason === 'rollback',
    )) as unknown as ModelActivated;
    t.is(rolledBack.version, good.version, 'automatic rollback to the version before');
    t.is(rolledBack.previousVersion, bad.version);
    const after = await benignEpisode();
    t.is(after.context.modelVersion, good.version, 'the next decision comes from the good version');
    t.is(after.action, ACTIONS.RELEASE);
    const stats = await system.stats();
    const episodes = stats.threads.flatMap((th) => th.actors).find((a) => a.actor === 'episodes');
    t.is(episodes?.custom.degradationAlerts, 1, 'one alert, counted for the metric');
  } finally {
    await system.stop();
  }
});
