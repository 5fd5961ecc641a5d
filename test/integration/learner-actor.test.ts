// The learner actor in its own worker thread: trains from the replay storage the main thread
// fills (shared memory, no copies through messages), only once 64 samples are held (property 7),
// exports validated models and announces them, and reports training metrics (property 34); a
// candidate that forgot what the version in service knew is held back (requirement 7.5).

import { existsSync, readFileSync } from 'node:fs';
import test from 'ava';
import type { DegradationAlert } from '../../src/actors/episodes/degradation.ts';
import { initParams } from '../../src/actors/learner/q-network.ts';
import { mergeDeep } from '../../src/config/load.ts';
import { loadTraces } from '../../src/data/load-traces.ts';
import { splitTraces } from '../../src/data/split.ts';
import { ACTIONS } from '../../src/messages/action.ts';
import type { Experience } from '../../src/messages/experience.ts';
import type { ModelPublished } from '../../src/messages/model.ts';
import { exportModel, listVersions, sha256 } from '../../src/models/store.ts';
import { ReplayStorage } from '../../src/runtime/shared/replay-storage.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { evaluatePolicy } from '../../src/training/evaluate.ts';
import { BUNDLED_HELD_OUT, evaluateParams, loadHeldOut } from '../../src/training/held-out.ts';
import { train } from '../../src/training/train.ts';
import { Inbox, modelDraft, testConfig } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

function transitions(n: number, dim: number, from = 0): Experience[] {
  return Array.from({ length: n }, (_, i) => ({
    state: new Float32Array(dim).fill(((from + i) % 10) / 10),
    nextState: new Float32Array(dim).fill(((from + i + 1) % 10) / 10),
    action: ((from + i) % 6) as Experience['action'],
    reward: (from + i) % 10 === 9 ? 1 : -0.01,
    done: (from + i) % 10 === 9,
    episode: Math.floor((from + i) / 10),
    stage: 1,
  }));
}

/** A small network learning alone on its thread, judged on 40 held-out episodes. */
const learnerConfig = (models: string, overrides: Record<string, unknown>) =>
  testConfig(
    mergeDeep(
      {
        telemetry: { stateDim: 32 },
        runtime: { placement: { learner: ['learner'] } },
        learning: {
          hiddenUnits: [16, 16],
          batchSize: 16,
          heldOutEpisodes: 40,
          maxUpdatesPerSecond: 100_000,
        },
        models: { dir: models },
      },
      overrides,
    ) as Record<string, unknown>,
  );

/**
 * The learner's own current figures: while its thread is too busy to answer (parsing the held-out
 * episodes on a loaded host can take more than the 5 s stats timeout), stats() gives the last
 * figures it answered with, marked stale — none at all before its first answer.
 */
/** The learner's own figures, waiting (at most 30 s) while its thread is too busy to answer. */
async function learnerStats(system: ActorSystem): Promise<Record<string, number>> {
  const end = Date.now() + 30_000;
  for (;;) {
    const stats = await system.stats();
    const learner = stats.threads.flatMap((t) => t.actors).find((a) => a.actor === 'learner')!;
    if (learner.staleMs === undefined) return learner.custom;
    if (Date.now() > end)
      throw new Error(`the learner's figures stayed stale for 30 s (${learner.staleMs} ms old)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the learner trains in its own thread from shared replay, exports and announces models', async (t) => {
  const models = tempDir('warden-learner-');
  const config = learnerConfig(models, {
    learning: {
      exportEvery: 200,
      updatesPerTransition: 0.5,
      averageEvery: 20,
      averageSnapshots: 5,
    },
  });
  const replay = ReplayStorage.create({ capacity: 10_000, dim: 32 });
  const system = new ActorSystem({ config, shared: { replay: replay.buffer } });
  const inbox = new Inbox(system);
  await system.start();
  try {
    replay.append(transitions(63, 32));
    await new Promise((r) => setTimeout(r, 300));
    t.is((await learnerStats(system)).updates, 0, 'property 7: no update below 64 samples');

    replay.append(transitions(500, 32, 63));
    const stats = await until(
      () => learnerStats(system),
      (s) => (s.updates ?? 0) >= 200,
    );
    t.true(stats.updates! >= 200, `updates: ${stats.updates}`);
    await new Promise((r) => setTimeout(r, 500));
    const settled = await learnerStats(system);
    t.true(
      settled.updates! <= Math.ceil(replay.written * 0.5),
      `learning follows the data: ${settled.updates} updates for ${replay.written} transitions`,
    );
    t.true(stats.loss! >= 0, 'loss reported');
    t.true(stats.epsilon! > 0 && stats.epsilon! <= 1, 'epsilon reported');
    t.true(Number.isFinite(stats.averageReward) && Number.isFinite(stats.updatesPerSecond));

    system.send('learner', { type: 'episode-finished', reward: 2 });
    const published = await inbox.waitFor<ModelPublished>((m) => m.type === 'model-published');
    t.true(existsSync(published.path));
    t.is(published.metadata.sha256, sha256(readFileSync(published.path)));
    t.is(published.metadata.stateDim, 32);
    t.is(published.metadata.engine, 'onnxruntime');
    t.is(
      (await learnerStats(system)).lastExportSnapshots,
      5,
      'the export is the mean of the last 5 snapshots, one every 20 updates (learning.averageSnapshots)',
    );
    // Judged on the fixed held-out set (requirement 7.5): in its metadata and in the stats.
    const accuracy = published.metadata.metrics.detectionAccuracy;
    t.true(accuracy >= 0 && accuracy <= 1, `held-out balanced accuracy ${accuracy}`);
    t.true(
      Math.abs((await learnerStats(system)).heldOutAccuracy! - accuracy) < 1e-9,
      'the held-out accuracy is exposed',
    );
    const after = await until(
      () => learnerStats(system),
      (s) => s.averageReward === 2,
    );
    t.is(after.averageReward, 2, 'episode rewards reach the learner');
  } finally {
    await system.stop();
  }
});

/**
 * The version in service, trained offline on the training split and exported into `models`, and
 * online data that teaches "never decide" on exactly the held-out states: a candidate trained on
 * it calls every sample benign (balanced accuracy 0.5).
 */
async function servingAndPoison(models: string, config: ReturnType<typeof learnerConfig>) {
  const heldOut = await loadHeldOut(config);
  const trained = await train({
    traces: splitTraces(await loadTraces(BUNDLED_HELD_OUT), 'train'),
    config,
    episodes: 400,
    seed: 1,
  });
  const good = await exportModel(models, trained.params, modelDraft());
  const judged = await evaluateParams(trained.params, heldOut, config);
  const goodAccuracy = judged.balancedAccuracy;
  const states: Float32Array[] = [];
  await evaluatePolicy(
    heldOut,
    (state) => {
      states.push(state.slice());
      return { action: ACTIONS.CONTINUE, qValues: new Float32Array(6) };
    },
    { dim: 32, horizon: config.telemetry.horizon, rewards: config.rewards },
  );
  const poison: Experience[] = states.flatMap((state, i) =>
    ([0, 1, 2, 3, 4, 5] as const).map((action) => ({
      state,
      nextState: state,
      action,
      reward: action === ACTIONS.CONTINUE ? 1 : -1,
      done: true,
      episode: i,
      stage: 1 as const,
    })),
  );
  return { good, goodAccuracy, goodReward: judged.meanReward, poison };
}

/**
 * A learner at learning rate 0.01 (from the start: no rehearsal) continuing from the version in
 * service, with the poison arriving once it has started (it learns from what comes after).
 */
async function poisonedLearner(prefix: string, overrides: Record<string, unknown>) {
  const models = tempDir(prefix);
  const config = learnerConfig(
    models,
    mergeDeep(
      {
        learning: {
          learningRate: 0.01,
          resumeLearningRate: 0.01,
          rehearsalShare: 0,
          exportEvery: 300,
          updatesPerTransition: 1,
        },
        replay: { prioritized: false },
      },
      overrides,
    ) as Record<string, unknown>,
  );
  const serving = await servingAndPoison(models, config);
  const replay = ReplayStorage.create({ capacity: 100_000, dim: 32 });
  const system = new ActorSystem({ config, shared: { replay: replay.buffer } });
  const inbox = new Inbox(system);
  await system.start();
  replay.append(serving.poison);
  return { ...serving, models, system, inbox };
}

test('requirement 7.5: a candidate that forgot is not exported; learning goes back to the version in service', async (t) => {
  const { models, system, inbox, good, goodAccuracy, goodReward } = await poisonedLearner(
    'warden-forget-',
    { alerts: { maxAccuracyDrop: 0.05 } },
  );
  try {
    t.true(goodAccuracy >= 0.56, `precondition: the version in service decides (${goodAccuracy})`);
    const alert = await inbox.waitFor<DegradationAlert>(
      (m) => m.type === 'model-degraded' && m.source === 'held-out',
      60_000,
    );
    t.is(alert.previousVersion, good.metadata.version);
    t.true(
      Math.abs(alert.previousAccuracy - goodAccuracy) < 1e-9,
      'judged against the version in service',
    );
    t.true(alert.accuracy < goodAccuracy - 0.05, `the candidate forgot: ${alert.accuracy}`);
    t.true(
      Math.abs(alert.previousAverageReward - goodReward) < 1e-9,
      'rewards compared on the same held-out episodes',
    );
    t.true(
      alert.averageReward < alert.previousAverageReward,
      `the candidate earns less there: ${alert.averageReward} vs ${alert.previousAverageReward}`,
    );
    const stats = await until(
      () => learnerStats(system),
      (s) => (s.reverted ?? 0) >= 1,
    );
    t.is(stats.reverted, 1);
    t.is(stats.exported, 0, 'the candidate was not exported');
    t.deepEqual(
      listVersions(models),
      [good.metadata.version],
      'only the version in service on disk',
    );
    t.true(Math.abs(stats.heldOutAccuracy! - goodAccuracy) < 1e-9);
    t.false(inbox.messages.some((m) => m.type === 'model-published'));
  } finally {
    await system.stop();
  }
});

test('a candidate worse than the version in service by less than the alert margin is not exported either, without an alert, and learning slows down', async (t) => {
  const { models, system, inbox, good, goodAccuracy } = await poisonedLearner('warden-refuse-', {
    learning: { exportTolerance: 0.01, refusedLearningRateFactor: 0.5 },
    alerts: { maxAccuracyDrop: 1 }, // no drop raises the alert
  });
  try {
    t.true(goodAccuracy >= 0.56, `precondition: the version in service decides (${goodAccuracy})`);
    const stats = await until(
      () => learnerStats(system),
      (s) => (s.reverted ?? 0) >= 2,
      60_000,
    );
    t.true(stats.reverted! >= 2, `refused: ${stats.reverted}`);
    t.is(stats.exported, 0, 'no worse candidate was exported');
    t.deepEqual(listVersions(models), [good.metadata.version]);
    t.is(stats.heldOutAlerts, 0, 'within alerts.maxAccuracyDrop: no alert');
    t.false(inbox.messages.some((m) => m.type === 'model-degraded'));
    t.is(
      stats.learningRate,
      0.01 * 0.5 ** stats.reverted!,
      'each refused candidate halves the learning rate',
    );
  } finally {
    await system.stop();
  }
});

test('continuing from a trained version: it fine-tunes at learning.resumeLearningRate and rehearses recorded episodes at learning.rehearsalShare of the intake', async (t) => {
  const models = tempDir('warden-rehearse-');
  const config = learnerConfig(models, {
    learning: {
      exportEvery: 1_000_000,
      updatesPerTransition: 0.5,
      resumeLearningRate: 2e-5,
      rehearsalShare: 0.25,
      rehearsalEpisodes: 20,
    },
  });
  await exportModel(models, initParams([32, 16, 16, 6], false, 3), modelDraft());
  const replay = ReplayStorage.create({ capacity: 100_000, dim: 32 });
  const system = new ActorSystem({ config, shared: { replay: replay.buffer } });
  await system.start();
  try {
    // The recorded episodes load after the thread is up.
    const first = await until(
      () => learnerStats(system),
      (s) => s.dataLoaded === 1,
    );
    t.is(first.learningRate, 2e-5);
    t.is(first.rehearsalEpisodes, 20, 'the first 20 of the training split');
    replay.append(transitions(600, 32));
    const stats = await until(
      () => learnerStats(system),
      (s) => (s.rehearsed ?? 0) >= 200,
    );
    // One part in four of the intake: 200 for 600, topped up one recorded episode (its chain of
    // up to 100 steps and 4 verdicts at 8 of them) at a time.
    t.true(stats.rehearsed! >= 200 && stats.rehearsed! < 200 + 132, `${stats.rehearsed}`);
    t.is(replay.written, 600 + stats.rehearsed!);
    const rehearsed = Array.from({ length: replay.size }, (_, i) => replay.read(i)!).filter(
      (e) => e.episode < 0,
    );
    t.is(rehearsed.length, stats.rehearsed!);
    t.true(rehearsed.some((e) => e.action === ACTIONS.CONTINUE && !e.done));
    t.true(rehearsed.some((e) => e.action === ACTIONS.TERMINATE && e.done));
    t.true(
      (await learnerStats(system)).updates! <= Math.ceil(600 * 0.5),
      'the pace follows the online data, not the rehearsed',
    );
  } finally {
    await system.stop();
  }
});

test('a fresh network (nothing in service) learns at learning.learningRate and rehearses nothing', async (t) => {
  const models = tempDir('warden-fresh-');
  const config = learnerConfig(models, { learning: { exportEvery: 1_000_000 } });
  const replay = ReplayStorage.create({ capacity: 10_000, dim: 32 });
  const system = new ActorSystem({ config, shared: { replay: replay.buffer } });
  await system.start();
  try {
    replay.append(transitions(300, 32));
    const stats = await until(
      () => learnerStats(system),
      (s) => (s.updates ?? 0) >= 50,
    );
    t.is(stats.learningRate, config.learning.learningRate);
    t.is(stats.rehearsalEpisodes, 0);
    t.is(replay.written, 300);
  } finally {
    await system.stop();
  }
});
