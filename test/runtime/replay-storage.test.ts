// Replay storage: capacity (property 5), completeness (property 6), sampling correctness
// (uniform covers the contents, prioritized follows priorities), n-step returns, and writers in
// real worker threads while the main thread samples.

import { once } from 'node:events';
import test from 'ava';
import fc from 'fast-check';
import type { Experience } from '../../src/messages/experience.ts';
import {
  createSampleBatch,
  MIN_REPLAY_CAPACITY,
  ReplayStorage,
  replayBytes,
  type SampleOptions,
} from '../../src/runtime/shared/replay-storage.ts';
import { spawnWorker } from '../../src/runtime/spawn.ts';

const DIM = 4;
const uniform: SampleOptions = { prioritized: false, nStep: 1, gamma: 0.9, alpha: 0.6, beta: 0.4 };

function exp(i: number, episode = i, done = true, reward = i): Experience {
  return {
    state: Float32Array.of(i, 0, 0, 0),
    nextState: Float32Array.of(i + 1, 0, 0, 0),
    action: (i % 6) as Experience['action'],
    reward,
    done,
    episode,
    stage: 1,
  };
}

test('property 5: replay capacity invariant — size never exceeds capacity, capacity never below 10,000', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40_000 }),
      fc.integer({ min: 1, max: 5_000 }),
      (total, chunk) => {
        const replay = ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: 1 });
        const one = {
          state: Float32Array.of(0),
          nextState: Float32Array.of(0),
          action: 0 as const,
          reward: 0,
          done: false,
          episode: 0,
          stage: 1 as const,
        };
        for (let left = total; left > 0; left -= chunk)
          replay.append(Array(Math.min(chunk, left)).fill(one));
        return replay.size === Math.min(total, MIN_REPLAY_CAPACITY) && replay.written === total;
      },
    ),
    { numRuns: 25 },
  );
  t.throws(() => ReplayStorage.create({ capacity: 9_999, dim: DIM }), { message: /≥ 10000/ });
});

test('property 6: every valid transition is stored exactly as given; malformed ones are counted, not stored', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          state: fc.float32Array({
            minLength: DIM,
            maxLength: DIM,
            noNaN: true,
            noDefaultInfinity: true,
          }),
          next: fc.float32Array({
            minLength: DIM,
            maxLength: DIM,
            noNaN: true,
            noDefaultInfinity: true,
          }),
          action: fc.integer({ min: 0, max: 5 }),
          reward: fc.float({ noNaN: true, noDefaultInfinity: true }),
          done: fc.boolean(),
          episode: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        }),
        { maxLength: 200 },
      ),
      fc.integer({ min: 0, max: 5 }),
      (rows, bad) => {
        const replay = ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: DIM });
        const valid: Experience[] = rows.map((r) => ({
          state: r.state,
          nextState: r.next,
          action: r.action as Experience['action'],
          reward: r.reward,
          done: r.done,
          episode: r.episode,
          stage: 1,
        }));
        // A NaN reward, a NaN in the state, an infinity in the next state (anywhere in the vector).
        const poisoned = (i: number, value: number) => {
          const v = exp(i).state.slice();
          v[(i * 7) % DIM] = value;
          return v;
        };
        const malformed = Array.from({ length: bad }, (_, i) =>
          i % 3 === 0
            ? { ...exp(i), reward: Number.NaN }
            : i % 3 === 1
              ? { ...exp(i), state: poisoned(i, Number.NaN) }
              : { ...exp(i), nextState: poisoned(i, Number.NEGATIVE_INFINITY) },
        );
        replay.append([...valid, ...malformed]);
        if (replay.size !== valid.length || replay.rejected !== bad) return false;
        return valid.every((e, slot) => {
          const got = replay.read(slot)!;
          return (
            got.action === e.action &&
            got.done === e.done &&
            got.episode === e.episode &&
            got.reward === Math.fround(e.reward) &&
            got.state.every((v, k) => Object.is(v, e.state[k])) &&
            got.nextState.every((v, k) => Object.is(v, e.nextState[k]))
          );
        });
      },
    ),
    { numRuns: 50 },
  );
  t.pass();
});

test('overwrites the oldest transitions first', (t) => {
  const replay = ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: DIM });
  replay.append(Array.from({ length: MIN_REPLAY_CAPACITY + 5 }, (_, i) => exp(i)));
  t.is(replay.read(0)!.state[0], MIN_REPLAY_CAPACITY, 'slot 0 now holds the newest');
  t.is(replay.read(5)!.state[0], 5, 'slot 5 still holds transition 5');
});

test('uniform sampling covers the whole contents with about equal frequency', (t) => {
  const replay = new ReplayStorage(
    ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: DIM }).buffer,
    42,
  );
  const n = 1_000;
  replay.append(Array.from({ length: n }, (_, i) => exp(i)));
  const counts = new Uint32Array(n);
  const out = createSampleBatch(256, DIM);
  const rounds = 400;
  for (let r = 0; r < rounds; r++) {
    replay.sample(256, uniform, out);
    for (let i = 0; i < out.size; i++) counts[out.states[i * DIM]!]!++;
  }
  const expected = (rounds * 256) / n;
  t.true(
    counts.every((c) => c > 0),
    'every transition was sampled',
  );
  // Chi-square with 999 degrees of freedom: mean 999, sd ≈ 44.7; 1200 is > 4 sd out.
  const chi = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  t.true(chi < 1200, `chi-square ${chi.toFixed(0)} is consistent with uniform`);
  t.true(
    out.weights.every((w) => w === 1),
    'uniform sampling has unit weights',
  );
});

test('prioritized sampling follows priorities^alpha, with importance weights (N·P)^-beta / max', (t) => {
  const replay = new ReplayStorage(
    ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: DIM }).buffer,
    7,
  );
  const n = 8;
  replay.append(Array.from({ length: n }, (_, i) => exp(i)));
  const opts: SampleOptions = { prioritized: true, nStep: 1, gamma: 0.9, alpha: 0.5, beta: 1 };
  replay.syncPriorities(opts.alpha);
  const priorities = [1, 4, 9, 16, 25, 36, 49, 64]; // ^0.5 → 1..8, total 36
  replay.updatePriorities(
    Array.from({ length: n }, (_, i) => i),
    priorities,
    opts.alpha,
    0,
  );
  const counts = new Float64Array(n);
  const out = createSampleBatch(64, DIM);
  const weightOf = new Float64Array(n);
  let total = 0;
  for (let r = 0; r < 2_000; r++) {
    replay.sample(64, opts, out);
    for (let i = 0; i < out.size; i++) {
      const slot = out.indices[i]!;
      counts[slot]!++;
      weightOf[slot] = out.weights[i]!;
      total++;
    }
  }
  for (let i = 0; i < n; i++) {
    const expected = (i + 1) / 36;
    t.true(
      Math.abs(counts[i]! / total - expected) < 0.01,
      `slot ${i}: ${(counts[i]! / total).toFixed(4)} ≈ ${expected.toFixed(4)}`,
    );
    t.true(Math.abs(replay.probability(i) - expected) < 1e-9);
    // beta = 1: w ∝ 1/P, normalised by the largest (the least likely slot) → w_i = P_min / P_i.
    t.true(Math.abs(weightOf[i]! - 1 / (i + 1)) < 1e-5, `weight of slot ${i}`);
  }
});

test('new transitions enter prioritized sampling at the running max priority', (t) => {
  const replay = new ReplayStorage(
    ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: DIM }).buffer,
    3,
  );
  const opts: SampleOptions = { prioritized: true, nStep: 1, gamma: 0.9, alpha: 1, beta: 0.4 };
  replay.append([exp(0), exp(1)]);
  replay.syncPriorities(1);
  replay.updatePriorities([0, 1], [0.5, 3], 1, 0);
  replay.append([exp(2)]);
  replay.sample(1, opts, createSampleBatch(1, DIM));
  t.true(Math.abs(replay.probability(2) - 3 / 6.5) < 1e-9, 'slot 2 got the max priority 3');
});

test('n-step returns sum discounted rewards within one episode and stop at done or the episode end', (t) => {
  const replay = new ReplayStorage(
    ReplayStorage.create({ capacity: MIN_REPLAY_CAPACITY, dim: DIM }).buffer,
    1,
  );
  // Episode 7: rewards 1, 2, 4, 8 (last done). Episode 8 follows directly.
  replay.append([
    exp(0, 7, false, 1),
    exp(1, 7, false, 2),
    exp(2, 7, false, 4),
    exp(3, 7, true, 8),
  ]);
  replay.append([exp(4, 8, false, 100), exp(5, 8, false, 100)]);
  const opts = { ...uniform, nStep: 3, gamma: 0.5 };
  const out = createSampleBatch(256, DIM);
  const seen = new Map<number, { ret: number; disc: number; done: number; next: number }>();
  for (let r = 0; r < 50; r++) {
    replay.sample(256, opts, out);
    for (let i = 0; i < out.size; i++) {
      seen.set(out.indices[i]!, {
        ret: out.returns[i]!,
        disc: out.discounts[i]!,
        done: out.dones[i]!,
        next: out.nextStates[i * DIM]!,
      });
    }
  }
  t.deepEqual(seen.get(0), { ret: 1 + 0.5 * 2 + 0.25 * 4, disc: 0.125, done: 0, next: 3 });
  t.deepEqual(seen.get(2), { ret: 4 + 0.5 * 8, disc: 0.25, done: 1, next: 4 }, 'stops at done');
  t.deepEqual(
    seen.get(5),
    { ret: 100, disc: 0.5, done: 0, next: 6 },
    'stops at the end of what is written',
  );
});

test('writers in two worker threads append while the main thread samples; every row is intact', async (t) => {
  const replay = new ReplayStorage(ReplayStorage.create({ capacity: 20_000, dim: 8 }).buffer, 11);
  const fixture = new URL('../fixtures/workers/replay-writer.ts', import.meta.url);
  const workers = [1, 2].map((writer) =>
    spawnWorker(
      fixture,
      { replay: replay.buffer, writer, episodes: 300, steps: 50 },
      `writer-${writer}`,
    ),
  );
  const results = workers.map((w) => once(w, 'message'));
  const out = createSampleBatch(64, 8);
  let torn = 0;
  let sampled = 0;
  let done = false;
  void Promise.all(results).then(() => (done = true));
  while (!done) {
    replay.sample(64, { ...uniform, nStep: 3 }, out);
    for (let i = 0; i < out.size; i++) {
      const row = out.states.subarray(i * 8, i * 8 + 8);
      const step = row[1]!;
      // A torn row would mix two transitions: its step columns would disagree, or the episode id
      // in state[0] would not be one the writers produce.
      if (!row.subarray(1).every((v) => v === step)) torn++;
      const episode = row[0]!;
      if (!(Math.floor(episode / 1_000_000) === 1 || Math.floor(episode / 1_000_000) === 2)) torn++;
      sampled++;
    }
    await new Promise((r) => setImmediate(r));
  }
  const stored = (await Promise.all(results)).reduce(
    (s, [m]) => s + (m as { stored: number }).stored,
    0,
  );
  t.is(stored, 2 * 300 * 50);
  t.is(replay.written, 30_000);
  t.is(replay.size, 20_000);
  t.is(torn, 0, `${sampled} rows sampled during writes, none torn`);
  await Promise.all(workers.map((w) => w.terminate()));
});

test('bytes per transition stay within 10% of the raw column sizes at 1M × 64', (t) => {
  const capacity = 1_000_000;
  const dim = 64;
  const raw = capacity * (dim * 4 * 2 + 4 + 4 + 4 + 1 + 1); // states, next, reward, priority, episode, action, done
  const ratio = replayBytes({ capacity, dim }) / raw;
  t.true(ratio < 1.1, `overhead ratio ${ratio.toFixed(3)}`);
});
