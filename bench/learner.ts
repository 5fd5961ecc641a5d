// Full DQN update throughput (sample from replay, targets, loss, backward, optimizer, target sync)
// through DqnLearner at batch 64 and 256, one core, for the ONNX Runtime engine and the
// TensorFlow.js reference engine; baseline in the same run: stock tf.layers + optimizer.minimize.
// The ORT engine is timed on a worker thread of its own, as Warden runs the learner, and on the
// main thread too, where TensorFlow.js's heap and wasm memory live beside it; both figures are
// printed and recorded.

import * as tf from '@tensorflow/tfjs';
import { ADAM, type EngineOptions } from '../src/actors/learner/engine.ts';
import { OrtEngine } from '../src/actors/learner/ort-engine.ts';
import { initParams } from '../src/actors/learner/q-network.ts';
import { TfjsEngine, tfjsBackend } from '../src/actors/learner/tfjs-engine.ts';
import type { Experience } from '../src/messages/experience.ts';
import { createSampleBatch, ReplayStorage } from '../src/runtime/shared/replay-storage.ts';
import { spawnWorker } from '../src/runtime/spawn.ts';
import { DIMS, measureLearner, type OrtThreadInit } from './learner-measure.ts';
import { fmtRate, median, printLatency, summarize, writeResult } from './lib.ts';

const DIM = 64;
const ORT_THREAD = new URL('./learner-measure.ts', import.meta.url);

/** The ORT engine on a thread of its own (as deployed), over the same replay storage. */
function onItsOwnThread(
  storage: ReplayStorage,
  batch: number,
  seconds: number,
  seed: number,
): Promise<Awaited<ReturnType<typeof measureLearner>>> {
  const init: OrtThreadInit = { replay: storage.buffer, batch, seconds, seed };
  const worker = spawnWorker(ORT_THREAD, init, 'bench-learner');
  return new Promise((resolve, reject) => {
    worker.once('message', (result) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

function replay(): ReplayStorage {
  const r = ReplayStorage.create({ capacity: 100_000, dim: DIM });
  for (let ep = 0; ep < 2_000; ep++) {
    r.append(
      Array.from(
        { length: 50 },
        (_, s): Experience => ({
          state: Float32Array.from({ length: DIM }, () => Math.random()),
          nextState: Float32Array.from({ length: DIM }, () => Math.random()),
          action: (s % 6) as Experience['action'],
          reward: Math.random() * 2 - 1,
          done: s === 49,
          episode: ep,
          stage: 1,
        }),
      ),
    );
  }
  return r;
}

/** The stock way: tf.layers model, target model predict, optimizer.minimize. */
async function measureStock(storage: ReplayStorage, batch: number, seconds: number) {
  const build = () =>
    tf.sequential({
      layers: [
        tf.layers.dense({ units: 256, activation: 'relu', inputShape: [DIM] }),
        tf.layers.dense({ units: 256, activation: 'relu' }),
        tf.layers.dense({ units: 6 }),
      ],
    });
  const model = build();
  const target = build();
  target.setWeights(model.getWeights());
  const optimizer = tf.train.adam(1e-3);
  const out = createSampleBatch(batch, DIM);
  const opts = { prioritized: false, nStep: 3, gamma: 0.99, alpha: 0.6, beta: 0.4 };
  let steps = 0;
  const step = async () => {
    storage.sample(batch, opts, out);
    const loss = tf.tidy((): tf.Scalar => {
      const x = tf.tensor2d(out.states, [batch, DIM]);
      const xn = tf.tensor2d(out.nextStates, [batch, DIM]);
      const next = tf.max(target.predict(xn) as tf.Tensor2D, 1);
      const y = tf.add(
        tf.tensor1d(out.returns),
        tf.mul(tf.mul(tf.tensor1d(out.discounts), tf.sub(1, tf.tensor1d(out.dones))), next),
      );
      const taken = tf.oneHot(tf.tensor1d(out.actions, 'int32'), 6);
      const value = optimizer.minimize(
        () =>
          tf.losses.huberLoss(
            y,
            tf.sum(tf.mul(model.apply(x) as tf.Tensor2D, taken), 1),
          ) as tf.Scalar,
        true,
      );
      return value ?? tf.scalar(0);
    });
    await loss.data();
    loss.dispose();
    if (++steps % 1000 === 0) target.setWeights(model.getWeights());
  };
  for (let i = 0; i < 5; i++) await step();
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await step();
    lat.push((performance.now() - t0) * 1000);
  }
  const total = lat.reduce((a, b) => a + b, 0) / 1e6;
  model.dispose();
  target.dispose();
  return { samplesPerSecond: (lat.length * batch) / total, latency: summarize(lat) };
}

export async function run(args: string[]): Promise<void> {
  const runs = Number(args[0] ?? 3);
  const seconds = Number(args[1] ?? 4);
  const backend = await tfjsBackend();
  console.log(
    `learner bench: ${DIMS.join('→')}, Adam, Huber, double DQN, clip 10, 3-step uniform replay; TensorFlow.js backend ${backend}; ${runs} runs × ${seconds} s`,
  );
  const storage = replay();
  const opts: EngineOptions = {
    learningRate: 1e-3,
    loss: 'huber',
    doubleDqn: true,
    gradClip: 10,
    adam: ADAM,
  };
  const headline: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  for (const batch of [64, 256]) {
    const results: Record<string, number[]> = { ort: [], ortMain: [], tfjs: [], stock: [] };
    for (let r = 0; r < runs; r++) {
      const o = await onItsOwnThread(storage, batch, seconds, r + 1);
      // The same engine on the main thread, beside TensorFlow.js's heap and wasm memory.
      const ort = await OrtEngine.create(initParams(DIMS, false, r + 1), opts);
      const om = await measureLearner(ort, storage, batch, seconds / 2);
      ort.dispose();
      const ref = await TfjsEngine.create(initParams(DIMS, false, r + 1), opts);
      const f = await measureLearner(ref, storage, batch, seconds / 2);
      ref.dispose();
      const s = await measureStock(storage, batch, seconds / 2);
      results.ort!.push(o.samplesPerSecond);
      results.ortMain!.push(om.samplesPerSecond);
      results.tfjs!.push(f.samplesPerSecond);
      results.stock!.push(s.samplesPerSecond);
      details[`batch ${batch} run ${r + 1}`] = { ort: o, ortMain: om, tfjs: f, stock: s };
      if (r === runs - 1) {
        printLatency(`batch ${batch} onnxruntime update (own thread)`, o.latency);
        printLatency(`batch ${batch} onnxruntime update (main thread)`, om.latency);
        printLatency(`batch ${batch} tfjs-${backend} reference update`, f.latency);
        printLatency(`batch ${batch} stock tf.layers + minimize`, s.latency);
      }
    }
    for (const [k, v] of Object.entries(results))
      headline[`batch ${batch} ${k} samples/s (median)`] = median(v);
    const m = (k: string) => median(results[k]!);
    console.log(
      `  batch ${batch}: onnxruntime ${fmtRate(m('ort'))} on its own thread (${fmtRate(m('ortMain'))} on main beside TensorFlow.js), tfjs reference ${fmtRate(m('tfjs'))}, stock ${fmtRate(m('stock'))} → ×${(m('ort') / m('stock')).toFixed(1)} over stock`,
    );
    headline[`batch ${batch} speed-up over stock`] = m('ort') / m('stock');
  }
  writeResult('learner', headline, { dims: DIMS, backend, runs, seconds, details });
}
