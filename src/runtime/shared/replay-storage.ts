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
//     priorities  Float32 × C      current priority (before the alpha exponent)
//     meta        16 bytes × C     the small per-transition fields, packed per slot:
//
//                   byte  0      4         8        12      13    14..15
//                       +------+---------+--------+-------+-----+-------+
//                       | seq  | episode | reward | action| done|  pad  |
//                       +------+---------+--------+-------+-----+-------+
//                        Int32   Int32    Float32  Uint8   Uint8
//
//                 seq is the slot's seqlock: odd while a writer fills it, even when stable, 0 never
//                 written. Packed, not one column each, because a sampled row is a random slot:
//                 at 1M slots five scalar columns cost five cache misses per row (index sampling
//                 of 256 rows measured 61 µs), one record costs one, and an n-step walk reads the
//                 neighbouring records from the same line.
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

// The meta record of slot i starts at word 4i (Int32/Float32 views) = byte 16i (Uint8 view).
const META_BYTES = 16;
const M_SEQ = 0;
const M_EPISODE = 1;
const M_REWARD = 2;
const M_ACTION_BYTE = 12;
const M_DONE_BYTE = 13;

export const MIN_REPLAY_CAPACITY = 10_000;

export interface ReplayLayout {
  readonly capacity: number;
  readonly dim: number;
}

/** Preallocated output of sample(); reused across calls so sampling allocates nothing. */
export interface SampleBatch {
  size: number;
  readonly indices: Int32Array;
  /** Slot whose next state ends the n-step return. */
  readonly nextIndices: Int32Array;
  /** Seqlock value of each row's slot when it was chosen (gather re-checks it). */
  readonly seqs: Int32Array;
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

/** Whether every value is finite: x·0 is 0 for finite x, NaN for NaN and ±∞ (a plain loop, no callback). */
function allFinite(v: Float32Array): boolean {
  let zero = 0;
  for (let i = 0; i < v.length; i++) zero += v[i]! * 0;
  return zero === 0;
}

export function createSampleBatch(maxBatch: number, dim: number): SampleBatch {
  return {
    size: 0,
    indices: new Int32Array(maxBatch),
    nextIndices: new Int32Array(maxBatch),
    seqs: new Int32Array(maxBatch),
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
    priorities: take(c * 4),
    meta: take(c * META_BYTES),
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
  readonly #priorities: Float32Array;
  /** Meta records as Int32 (seq, episode), Float32 (reward) and bytes (action, done). */
  readonly #metaI32: Int32Array;
  readonly #metaF32: Float32Array;
  readonly #metaU8: Uint8Array;
  readonly #sum: Float64Array;
  readonly #min: Float64Array;
  readonly #p: number;
  // Sampler-side state (lives in the thread that samples).
  #synced = 0n;
  #maxPriority = 1;
  #alphaInTree = Number.NaN;
  #rng: () => number;
  /** Sink for prefetch loads so the compiler cannot drop them. */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: written on purpose, never read
  #touched = 0;
  #mass = new Float64Array(256);
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
    this.#priorities = new Float32Array(buffer, o.priorities, c);
    this.#metaI32 = new Int32Array(buffer, o.meta, c * 4);
    this.#metaF32 = new Float32Array(buffer, o.meta, c * 4);
    this.#metaU8 = new Uint8Array(buffer, o.meta, c * META_BYTES);
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
      allFinite(e.state) &&
      allFinite(e.nextState)
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
      const m = slot * 4;
      const before = Atomics.load(this.#metaI32, m + M_SEQ);
      const writing = (before | 1) + (before & 1 ? 2 : 0);
      Atomics.store(this.#metaI32, m + M_SEQ, writing);
      this.#states.set(e.state, slot * this.dim);
      this.#nextStates.set(e.nextState, slot * this.dim);
      this.#metaI32[m + M_EPISODE] = e.episode;
      this.#metaF32[m + M_REWARD] = e.reward;
      this.#metaU8[slot * META_BYTES + M_ACTION_BYTE] = e.action;
      this.#metaU8[slot * META_BYTES + M_DONE_BYTE] = e.done ? 1 : 0;
      this.#priorities[slot] = Number.NaN; // "new": the sampler gives it the running max
      Atomics.store(this.#metaI32, m + M_SEQ, writing + 1);
      slot = slot + 1 === c ? 0 : slot + 1;
    }
    return n;
  }

  /** Reads one stored transition back (for audits and tests); undefined while being written. */
  read(slot: number): Experience | undefined {
    const s = this.#seqOf(slot);
    if (s === 0 || s & 1) return undefined;
    const d = this.dim;
    const e: Experience = {
      state: this.#states.slice(slot * d, slot * d + d),
      nextState: this.#nextStates.slice(slot * d, slot * d + d),
      action: this.#metaU8[slot * META_BYTES + M_ACTION_BYTE] as Experience['action'],
      reward: this.#metaF32[slot * 4 + M_REWARD]!,
      done: this.#metaU8[slot * META_BYTES + M_DONE_BYTE] === 1,
      episode: this.#metaI32[slot * 4 + M_EPISODE]!,
      stage: 1,
    };
    return this.#seqOf(slot) === s ? e : undefined;
  }

  #seqOf(slot: number): number {
    return Atomics.load(this.#metaI32, slot * 4 + M_SEQ);
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
        if (this.#seqOf(slot) !== 0 && !Number.isNaN(p)) this.#setLeaf(slot, p ** alpha);
      }
    }
    const written = Atomics.load(this.#cursor, H_CURSOR_BIGINT);
    let from = this.#synced;
    const cap = BigInt(this.capacity);
    if (written - from > cap) from = written - cap;
    const maxLeaf = this.#maxPriority ** alpha;
    for (let i = from; i < written; i++) {
      const slot = Number(i % cap);
      if (this.#seqOf(slot) & 1) break; // a writer is still filling it: next time
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

  /**
   * Stratified prioritized draw of n slots (one per equal segment of the total mass, as in
   * Schaul et al. 2016), descending the sum tree for all n at once, level by level: the n loads
   * of a level are independent, so their cache misses overlap (one descent at a time pays ~20
   * dependent misses at 1M slots).
   */
  #descendAll(total: number, n: number, out: Int32Array): void {
    if (this.#mass.length < n) this.#mass = new Float64Array(n);
    const mass = this.#mass;
    const sum = this.#sum;
    const segment = total / n;
    const top = total * (1 - 1e-12);
    for (let i = 0; i < n; i++) {
      const m = segment * (i + this.#rng());
      mass[i] = Math.min(m, top);
      out[i] = 1;
    }
    for (let level = 1; level < this.#p; level *= 2) {
      for (let i = 0; i < n; i++) {
        const l = 2 * out[i]!;
        const left = sum[l]!;
        if (mass[i]! < left) out[i] = l;
        else {
          mass[i] = mass[i]! - left;
          out[i] = l + 1;
        }
      }
    }
    for (let i = 0; i < n; i++) out[i] = out[i]! - this.#p;
  }

  /** Priority probability of a slot under the current trees (for tests and diagnostics). */
  probability(slot: number): number {
    const total = this.#sum[1]!;
    return total > 0 ? this.#sum[slot + this.#p]! / total : 0;
  }

  /**
   * Samples `batchSize` transitions into `out` and copies their states: sampleIndices + gather.
   * Returns the number sampled (0 while the storage is empty).
   */
  sample(batchSize: number, opts: SampleOptions, out: SampleBatch): number {
    const n = this.sampleIndices(batchSize, opts, out);
    this.gather(out);
    return n;
  }

  /**
   * Chooses transitions without copying their states: fills indices, actions, n-step returns,
   * dones, discounts, weights and nextIndices. Uniform: every held transition equally likely;
   * prioritized: proportional to priority^alpha with weights (N·P(i))^-beta / max weight.
   */
  sampleIndices(batchSize: number, opts: SampleOptions, out: SampleBatch): number {
    const size = this.size;
    out.size = 0;
    if (size === 0) return 0;
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
    // Draw every slot first and touch its meta record in an independent loop: the loads do not
    // depend on each other, so the CPU overlaps their cache misses instead of paying them one
    // after another inside #choose.
    const pre = out.indices;
    if (opts.prioritized) this.#descendAll(total, n, pre);
    else for (let i = 0; i < n; i++) pre[i] = (this.#rng() * size) | 0;
    let touch = 0;
    for (let i = 0; i < n; i++) {
      const slot = pre[i]!;
      touch ^= this.#metaI32[slot * 4 + M_EPISODE]!;
      // The n-step walk reads the next records; the last one may sit on the next cache line.
      const end = slot + opts.nStep - 1;
      if (end > slot && end < this.capacity) touch ^= this.#metaI32[end * 4 + M_EPISODE]!;
    }
    this.#touched = touch;
    // #choose writes row `filled` ≤ i, so it never overwrites a candidate not yet read.
    let filled = 0;
    for (let i = 0; i < n; i++) {
      const slot = pre[i]!;
      let weight = 1;
      if (opts.prioritized) {
        if (slot >= size) continue;
        const p = this.#sum[slot + this.#p]! / total;
        if (!(p > 0)) continue;
        weight = (size * p) ** -opts.beta / maxWeight;
      }
      if (this.#choose(slot, opts, out, filled)) out.weights[filled++] = weight;
    }
    // Rows lost to a racing writer are refilled one at a time (rare).
    for (let attempts = 0; filled < n && attempts < n * 8; attempts++) {
      let slot: number;
      let weight = 1;
      if (opts.prioritized) {
        slot = this.#findPrefix(this.#rng() * total * (1 - 1e-12));
        if (slot >= size) continue;
        const p = this.#sum[slot + this.#p]! / total;
        if (!(p > 0)) continue;
        weight = (size * p) ** -opts.beta / maxWeight;
      } else {
        slot = (this.#rng() * size) | 0;
      }
      if (this.#choose(slot, opts, out, filled)) out.weights[filled++] = weight;
    }
    out.size = filled;
    return filled;
  }

  /**
   * Copies the states and next states of the chosen rows into the batch. A row whose slot a
   * writer took over since sampleIndices (seqlock changed) is replaced by the previous good row,
   * so the batch never holds a torn transition.
   */
  gather(out: SampleBatch): void {
    const d = this.dim;
    const states = this.#states;
    const next = this.#nextStates;
    let firstTorn = false;
    for (let row = 0; row < out.size; row++) {
      const slot = out.indices[row]!;
      const dst = row * d;
      // Plain loops: V8 compiles them to straight copies; subarray()+set() allocates per row.
      let src = slot * d;
      for (let k = 0; k < d; k++) out.states[dst + k] = states[src + k]!;
      src = out.nextIndices[row]! * d;
      for (let k = 0; k < d; k++) out.nextStates[dst + k] = next[src + k]!;
      if (this.#seqOf(slot) !== out.seqs[row]) {
        if (row > 0) this.#copyRow(out, row - 1, row);
        else firstTorn = true;
      }
    }
    if (firstTorn) {
      if (out.size > 1) this.#copyRow(out, 1, 0);
      else out.size = 0;
    }
  }

  #copyRow(out: SampleBatch, from: number, to: number): void {
    const d = this.dim;
    out.states.copyWithin(to * d, from * d, from * d + d);
    out.nextStates.copyWithin(to * d, from * d, from * d + d);
    out.indices[to] = out.indices[from]!;
    out.nextIndices[to] = out.nextIndices[from]!;
    out.seqs[to] = out.seqs[from]!;
    out.actions[to] = out.actions[from]!;
    out.returns[to] = out.returns[from]!;
    out.dones[to] = out.dones[from]!;
    out.discounts[to] = out.discounts[from]!;
    out.weights[to] = out.weights[from]!;
  }

  /** Computes one row's n-step return and next slot; false if a writer holds the slot. */
  #choose(slot: number, opts: SampleOptions, out: SampleBatch, row: number): boolean {
    const i32 = this.#metaI32;
    const seqBefore = Atomics.load(i32, slot * 4 + M_SEQ);
    if (seqBefore === 0 || seqBefore & 1) return false;
    const episode = i32[slot * 4 + M_EPISODE]!;
    let ret = 0;
    let discount = 1;
    let last = slot;
    let done = 0;
    for (let k = 0; k < opts.nStep; k++) {
      let s = slot + k;
      if (s >= this.capacity) s -= this.capacity;
      if (k > 0) {
        const sq = Atomics.load(i32, s * 4 + M_SEQ);
        if (sq === 0 || sq & 1 || i32[s * 4 + M_EPISODE] !== episode) break;
      }
      ret += discount * this.#metaF32[s * 4 + M_REWARD]!;
      discount *= opts.gamma;
      last = s;
      if (this.#metaU8[s * META_BYTES + M_DONE_BYTE] === 1) {
        done = 1;
        break;
      }
    }
    out.actions[row] = this.#metaU8[slot * META_BYTES + M_ACTION_BYTE]!;
    out.returns[row] = ret;
    out.dones[row] = done;
    out.discounts[row] = discount;
    out.indices[row] = slot;
    out.nextIndices[row] = last;
    out.seqs[row] = seqBefore;
    // Seqlock read side: if the slot changed while we read it, the row is torn; drop it.
    return Atomics.load(i32, slot * 4 + M_SEQ) === seqBefore;
  }
}
