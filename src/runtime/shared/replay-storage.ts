// Replay storage: fixed-capacity columnar transitions in one SharedArrayBuffer. Writers in any
// thread append; the learner samples in place (uniform or prioritized, n-step returns) and copies
// only the sampled rows into its batch. The oldest transitions are overwritten first.
//
//   Layout (each column starts on an 8-byte boundary; C = capacity, D = state dim, P = C rounded
//   up to a power of two):
//
//     header      Int32 × 16   CAPACITY, DIM, TREE_SIZE; then the write cursor as BigInt64 at word 8
//     states      Float32 × C·D
//     nextStates  Float32 × C·D
//     rewards     Float32 × C
//     priorities  Float32 × C      current priority (before the alpha exponent)
//     episodes    Int32   × C
//     seq         Int32   × C      per-slot seqlock: odd while a writer fills it, even when stable;
//                                  0 = never written
//     actions     Uint8   × C
//     dones       Uint8   × C
//     sumTree     Float64 × 2P     leaves P..2P-1 hold priority^alpha; node k = sum of 2k, 2k+1
//     minTree     Float64 × 2P     same shape, min instead of sum (for the max importance weight)
//
//   Writers reserve a contiguous range of slots with one Atomics.add on the cursor, so a batch
//   (an episode's transitions) lands contiguously and n-step returns can walk forward slot by slot.
//
//   The trees belong to one sampler (the learner): writers never touch them. Before sampling, the
//   sampler inserts slots committed since its last look at the running max priority (syncPriorities).
//   That keeps every tree write single-threaded without a lock.

import type { Experience } from '../../messages/experience.ts';
import { LayoutError } from '../errors.ts';

const H_CAPACITY = 0;
const H_DIM = 1;
const H_TREE = 2;
const H_CURSOR_BIGINT = 4; // index in BigInt64 units = byte 32
const HEADER_BYTES = 64;

const align8 = (n: number) => (n + 7) & ~7;

export const MIN_REPLAY_CAPACITY = 10_000;

export interface ReplayLayout {
  readonly capacity: number;
  readonly dim: number;
}

/** Preallocated output of sample(); reused across calls so sampling allocates nothing. */
export interface SampleBatch {
  size: number;
  readonly indices: Int32Array;
  readonly states: Float32Array;
  readonly actions: Int32Array;
  /** n-step discounted return Σ γ^k r_{t+k}. */
  readonly returns: Float32Array;
  /** State after the last step included in the return. */
  readonly nextStates: Float32Array;
  /** 1 when the return reached a terminal transition (no bootstrap). */
  readonly dones: Float32Array;
  /** γ^m where m is the number of steps summed; the bootstrap is discounts · max Q(next). */
  readonly discounts: Float32Array;
  /** Importance-sampling weights (all 1 for uniform sampling). */
  readonly weights: Float32Array;
}

export function createSampleBatch(maxBatch: number, dim: number): SampleBatch {
  return {
    size: 0,
    indices: new Int32Array(maxBatch),
    states: new Float32Array(maxBatch * dim),
    actions: new Int32Array(maxBatch),
    returns: new Float32Array(maxBatch),
    nextStates: new Float32Array(maxBatch * dim),
    dones: new Float32Array(maxBatch),
    discounts: new Float32Array(maxBatch),
    weights: new Float32Array(maxBatch),
  };
}

export interface SampleOptions {
  readonly prioritized: boolean;
  readonly nStep: number;
  readonly gamma: number;
  readonly alpha: number;
  readonly beta: number;
}

/** Bytes one transition costs in the buffer, trees included; for the bench's overhead figure. */
export function replayBytes(layout: ReplayLayout): number {
  return computeOffsets(layout).total;
}

function treeSize(capacity: number): number {
  let p = 1;
  while (p < capacity) p *= 2;
  return p;
}

function computeOffsets({ capacity: c, dim: d }: ReplayLayout) {
  const p = treeSize(c);
  let at = HEADER_BYTES;
  const take = (bytes: number) => {
    const start = at;
    at = align8(at + bytes);
    return start;
  };
  const o = {
    states: take(c * d * 4),
    nextStates: take(c * d * 4),
    rewards: take(c * 4),
    priorities: take(c * 4),
    episodes: take(c * 4),
    seq: take(c * 4),
    actions: take(c),
    dones: take(c),
    sumTree: take(2 * p * 8),
    minTree: take(2 * p * 8),
    total: 0,
    treeSize: p,
  };
  o.total = at;
  return o;
}

/** xorshift32: fast and seedable, so tests can replay a sampling sequence. */
function makeRng(seed: number): () => number {
  let s = seed | 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export class ReplayStorage {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly dim: number;
  readonly #cursor: BigInt64Array;
  readonly #states: Float32Array;
  readonly #nextStates: Float32Array;
  readonly #rewards: Float32Array;
  readonly #priorities: Float32Array;
  readonly #episodes: Int32Array;
  readonly #seq: Int32Array;
  readonly #actions: Uint8Array;
  readonly #dones: Uint8Array;
  readonly #sum: Float64Array;
  readonly #min: Float64Array;
  readonly #p: number;
  // Sampler-side state (lives in the thread that samples).
  #synced = 0n;
  #maxPriority = 1;
  #alphaInTree = Number.NaN;
  #rng: () => number;
  /** Transitions refused by append() because they were malformed (wrong dim, NaN, bad action). */
  rejected = 0;

  static create(layout: ReplayLayout): ReplayStorage {
    const { capacity, dim } = layout;
    if (!Number.isInteger(capacity) || capacity < MIN_REPLAY_CAPACITY) {
      throw new LayoutError(
        `replay capacity must be an integer ≥ ${MIN_REPLAY_CAPACITY}, got ${capacity}`,
      );
    }
    if (!Number.isInteger(dim) || dim < 1 || dim > 4096) {
      throw new LayoutError(`state dimension must be an integer in 1..4096, got ${dim}`);
    }
    const o = computeOffsets(layout);
    const buffer = new SharedArrayBuffer(o.total);
    const header = new Int32Array(buffer, 0, 8);
    header[H_CAPACITY] = capacity;
    header[H_DIM] = dim;
    header[H_TREE] = o.treeSize;
    const min = new Float64Array(buffer, o.minTree, 2 * o.treeSize);
    min.fill(Number.POSITIVE_INFINITY);
    return new ReplayStorage(buffer);
  }

  /** Attaches to storage created in another thread; pass a seed for a reproducible sampler. */
  constructor(buffer: SharedArrayBuffer, seed = (Math.random() * 2 ** 32) | 0) {
    this.buffer = buffer;
    const header = new Int32Array(buffer, 0, 8);
    this.capacity = header[H_CAPACITY]!;
    this.dim = header[H_DIM]!;
    const o = computeOffsets({ capacity: this.capacity, dim: this.dim });
    if (o.total !== buffer.byteLength)
      throw new LayoutError('buffer size does not match the replay header');
    const c = this.capacity;
    this.#p = o.treeSize;
    this.#cursor = new BigInt64Array(buffer, 0, HEADER_BYTES / 8);
    this.#states = new Float32Array(buffer, o.states, c * this.dim);
    this.#nextStates = new Float32Array(buffer, o.nextStates, c * this.dim);
    this.#rewards = new Float32Array(buffer, o.rewards, c);
    this.#priorities = new Float32Array(buffer, o.priorities, c);
    this.#episodes = new Int32Array(buffer, o.episodes, c);
    this.#seq = new Int32Array(buffer, o.seq, c);
    this.#actions = new Uint8Array(buffer, o.actions, c);
    this.#dones = new Uint8Array(buffer, o.dones, c);
    this.#sum = new Float64Array(buffer, o.sumTree, 2 * this.#p);
    this.#min = new Float64Array(buffer, o.minTree, 2 * this.#p);
    this.#rng = makeRng(seed);
  }

  /** Transitions ever appended (including overwritten ones). */
  get written(): number {
    return Number(Atomics.load(this.#cursor, H_CURSOR_BIGINT));
  }

  /** Transitions currently held: min(written, capacity). */
  get size(): number {
    const w = this.written;
    return Math.min(w, this.capacity);
  }

  #valid(e: Experience): boolean {
    return (
      e.state.length === this.dim &&
      e.nextState.length === this.dim &&
      Number.isInteger(e.action) &&
      e.action >= 0 &&
      e.action < 256 &&
      Number.isFinite(e.reward) &&
      Number.isInteger(e.episode) &&
      e.state.every(Number.isFinite) &&
      e.nextState.every(Number.isFinite)
    );
  }

  /**
   * Appends transitions as one contiguous range (one episode's transitions keep their order, so
   * n-step returns can follow them). Malformed transitions are skipped and counted in `rejected`.
   * Returns the number stored.
   */
  append(experiences: readonly Experience[]): number {
    const valid = experiences.filter((e) => this.#valid(e));
    this.rejected += experiences.length - valid.length;
    const n = valid.length;
    if (n === 0) return 0;
    const start = Atomics.add(this.#cursor, H_CURSOR_BIGINT, BigInt(n));
    const c = this.capacity;
    let slot = Number(start % BigInt(c));
    for (let i = 0; i < n; i++) {
      const e = valid[i]!;
      // Seqlock write side: make the slot odd, fill it, make it even again.
      const before = Atomics.load(this.#seq, slot);
      const writing = (before | 1) + (before & 1 ? 2 : 0);
      Atomics.store(this.#seq, slot, writing);
      this.#states.set(e.state, slot * this.dim);
      this.#nextStates.set(e.nextState, slot * this.dim);
      this.#actions[slot] = e.action;
      this.#rewards[slot] = e.reward;
      this.#dones[slot] = e.done ? 1 : 0;
      this.#episodes[slot] = e.episode;
      this.#priorities[slot] = Number.NaN; // "new": the sampler gives it the running max
      Atomics.store(this.#seq, slot, writing + 1);
      slot = slot + 1 === c ? 0 : slot + 1;
    }
    return n;
  }

  /** Reads one stored transition back (for audits and tests); undefined while being written. */
  read(slot: number): Experience | undefined {
    const s = Atomics.load(this.#seq, slot);
    if (s === 0 || s & 1) return undefined;
    const d = this.dim;
    const e: Experience = {
      state: this.#states.slice(slot * d, slot * d + d),
      nextState: this.#nextStates.slice(slot * d, slot * d + d),
      action: this.#actions[slot] as Experience['action'],
      reward: this.#rewards[slot]!,
      done: this.#dones[slot] === 1,
      episode: this.#episodes[slot]!,
      stage: 1,
    };
    return Atomics.load(this.#seq, slot) === s ? e : undefined;
  }

  // ---- sampler side (one thread) -------------------------------------------------------------

  #setLeaf(slot: number, value: number): void {
    let k = slot + this.#p;
    const sum = this.#sum;
    const min = this.#min;
    sum[k] = value;
    min[k] = value;
    k >>= 1;
    while (k >= 1) {
      const l = 2 * k;
      sum[k] = sum[l]! + sum[l + 1]!;
      const a = min[l]!;
      const b = min[l + 1]!;
      min[k] = Math.min(a, b);
      k >>= 1;
    }
  }

  /** Gives every slot committed since the last call the running max priority in the trees. */
  syncPriorities(alpha: number): void {
    if (alpha !== this.#alphaInTree) {
      // Alpha changed (config hot reload): rebuild every leaf with the new exponent.
      this.#alphaInTree = alpha;
      for (let slot = 0; slot < this.size; slot++) {
        const p = this.#priorities[slot]!;
        if (Atomics.load(this.#seq, slot) !== 0 && !Number.isNaN(p))
          this.#setLeaf(slot, p ** alpha);
      }
    }
    const written = Atomics.load(this.#cursor, H_CURSOR_BIGINT);
    let from = this.#synced;
    const cap = BigInt(this.capacity);
    if (written - from > cap) from = written - cap;
    const maxLeaf = this.#maxPriority ** alpha;
    for (let i = from; i < written; i++) {
      const slot = Number(i % cap);
      if (Atomics.load(this.#seq, slot) & 1) break; // a writer is still filling it: next time
      this.#priorities[slot] = this.#maxPriority;
      this.#setLeaf(slot, maxLeaf);
      from = i + 1n;
    }
    this.#synced = from;
  }

  /** After a learning step: new priorities (|TD error| + ε) for the sampled slots. */
  updatePriorities(
    indices: ArrayLike<number>,
    tdErrors: ArrayLike<number>,
    alpha: number,
    epsilon = 1e-6,
  ): void {
    for (let i = 0; i < indices.length; i++) {
      const slot = indices[i]!;
      const raw = Math.abs(tdErrors[i]!);
      const p = (Number.isFinite(raw) ? raw : this.#maxPriority) + epsilon;
      if (p > this.#maxPriority) this.#maxPriority = p;
      this.#priorities[slot] = p;
      this.#setLeaf(slot, p ** alpha);
    }
  }

  /** Finds the leaf whose prefix-sum interval contains `mass` (sum-tree descent). */
  #findPrefix(mass: number): number {
    const sum = this.#sum;
    let k = 1;
    while (k < this.#p) {
      const l = 2 * k;
      const left = sum[l]!;
      if (mass < left) k = l;
      else {
        mass -= left;
        k = l + 1;
      }
    }
    return k - this.#p;
  }

  /** Priority probability of a slot under the current trees (for tests and diagnostics). */
  probability(slot: number): number {
    const total = this.#sum[1]!;
    return total > 0 ? this.#sum[slot + this.#p]! / total : 0;
  }

  /**
   * Samples `batchSize` transitions into `out`. Uniform: every held transition equally likely;
   * prioritized: proportional to priority^alpha with weights (N·P(i))^-beta / max weight.
   * Returns the number sampled (0 while the storage is empty).
   */
  sample(batchSize: number, opts: SampleOptions, out: SampleBatch): number {
    const size = this.size;
    out.size = 0;
    if (size === 0) return 0;
    const d = this.dim;
    const n = Math.min(batchSize, out.actions.length);
    let total = 0;
    let maxWeight = 1;
    if (opts.prioritized) {
      this.syncPriorities(opts.alpha);
      total = this.#sum[1]!;
      if (!(total > 0)) return 0;
      const minP = this.#min[1]! / total;
      maxWeight = (size * minP) ** -opts.beta;
    }
    let filled = 0;
    let attempts = 0;
    while (filled < n && attempts < n * 8) {
      attempts++;
      let slot: number;
      let weight = 1;
      if (opts.prioritized) {
        // Stratified: one draw per equal segment of the total mass, as in Schaul et al. 2016.
        const segment = total / n;
        slot = this.#findPrefix(Math.min(segment * (filled + this.#rng()), total * (1 - 1e-12)));
        if (slot >= size) continue;
        const p = this.#sum[slot + this.#p]! / total;
        if (!(p > 0)) continue;
        weight = (size * p) ** -opts.beta / maxWeight;
      } else {
        slot = (this.#rng() * size) | 0;
      }
      if (this.#gather(slot, opts, out, filled, d)) {
        out.weights[filled] = weight;
        filled++;
      }
    }
    out.size = filled;
    return filled;
  }

  /** Copies one transition (with its n-step return) into row `row`; false if a writer raced it. */
  #gather(slot: number, opts: SampleOptions, out: SampleBatch, row: number, d: number): boolean {
    const seqBefore = Atomics.load(this.#seq, slot);
    if (seqBefore === 0 || seqBefore & 1) return false;
    const episode = this.#episodes[slot]!;
    let ret = 0;
    let discount = 1;
    let last = slot;
    let done = 0;
    for (let k = 0; k < opts.nStep; k++) {
      const s = (slot + k) % this.capacity;
      if (k > 0) {
        const sq = Atomics.load(this.#seq, s);
        if (sq === 0 || sq & 1 || this.#episodes[s] !== episode) break;
      }
      ret += discount * this.#rewards[s]!;
      discount *= opts.gamma;
      last = s;
      if (this.#dones[s] === 1) {
        done = 1;
        break;
      }
    }
    out.states.set(this.#states.subarray(slot * d, slot * d + d), row * d);
    out.nextStates.set(this.#nextStates.subarray(last * d, last * d + d), row * d);
    out.actions[row] = this.#actions[slot]!;
    out.returns[row] = ret;
    out.dones[row] = done;
    out.discounts[row] = discount;
    out.indices[row] = slot;
    // Seqlock read side: if the first slot changed while we copied, the row is torn; drop it.
    return Atomics.load(this.#seq, slot) === seqBefore;
  }
}
