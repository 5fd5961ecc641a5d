// The learner actor in its own worker thread: trains from the replay storage the main thread
// fills (shared memory, no copies through messages), only once 64 samples are held (property 7),
// exports validated models and announces them, and reports training metrics (property 34).

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Experience } from '../../src/messages/experience.ts';
import type { ModelPublished } from '../../src/messages/model.ts';
import { sha256 } from '../../src/models/store.ts';
import { ReplayStorage } from '../../src/runtime/shared/replay-storage.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { Inbox, testConfig } from '../helpers.ts';

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

async function learnerStats(system: ActorSystem): Promise<Record<string, number>> {
  const stats = await system.stats();
  return stats.threads.flatMap((t) => t.actors).find((a) => a.actor === 'learner')!.custom;
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
  const models = mkdtempSync(join(tmpdir(), 'warden-learner-'));
  const config = testConfig({
    telemetry: { stateDim: 32 },
    runtime: { placement: { learner: ['learner'] } },
    learning: {
      hiddenUnits: [16, 16],
      batchSize: 16,
      exportEvery: 200,
      heldOutEpisodes: 40,
      updatesPerTransition: 0.5,
      maxUpdatesPerSecond: 100_000,
    },
    models: { dir: models },
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
