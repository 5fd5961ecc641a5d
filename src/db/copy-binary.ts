// PostgreSQL's binary COPY format — the DB writer's path for new patterns and trajectories. COPY
// takes the server's bulk-insert path (several rows per page and per WAL record, the heap extended
// many pages at a time) and reads values without parsing; INSERT … SELECT unnest(…) contended on
// extending the table and evaluated an expression per column per row. pg-copy-streams carries the
// bytes; PostgreSQL defines the layout (docs: COPY, "Binary Format"), the cube extension's
// cube_recv (cube ≥ 1.5) its value: a header word (point flag | dimensions), big-endian doubles.

import type { AttackPattern } from '../messages/pattern.ts';
import type { EpisodeTrajectory, TrajectoryStep } from '../messages/trajectory.ts';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const POINT_BIT = 0x80000000;
const FLOAT4_OID = 700;
const INT2_OID = 21;
const INT4_OID = 23;
const BOOL_OID = 16;
/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

/** A COPY … (FORMAT binary) stream's bytes, tuple by tuple (the buffer grows as needed). */
class CopyWriter {
  #buf: Buffer;
  #view: DataView;
  #at = 0;

  constructor(estimate: number) {
    this.#buf = Buffer.allocUnsafe(Math.max(64, estimate));
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    this.#ensure(SIGNATURE.length + 8);
    SIGNATURE.copy(this.#buf, 0);
    this.#at = SIGNATURE.length;
    this.#int32(0); // flags
    this.#int32(0); // header extension length
  }

  #ensure(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n));
    this.#buf.copy(next, 0, 0, this.#at);
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  #int32(v: number): void {
    this.#view.setInt32(this.#at, v);
    this.#at += 4;
  }

  tuple(fields: number): this {
    this.#ensure(2);
    this.#view.setInt16(this.#at, fields);
    this.#at += 2;
    return this;
  }

  null(): this {
    this.#ensure(4);
    this.#int32(-1);
    return this;
  }

  text(s: string | null | undefined): this {
    if (s == null) return this.null();
    const bytes = Buffer.byteLength(s, 'utf8');
    this.#ensure(4 + bytes);
    this.#int32(bytes);
    this.#at += this.#buf.write(s, this.#at, 'utf8');
    return this;
  }

  int16(v: number): this {
    this.#ensure(6);
    this.#int32(2);
    this.#view.setInt16(this.#at, v);
    this.#at += 2;
    return this;
  }

  int32(v: number | null): this {
    if (v === null) return this.null();
    this.#ensure(8);
    this.#int32(4);
    this.#int32(v);
    return this;
  }

  float4(v: number): this {
    this.#ensure(8);
    this.#int32(4);
    this.#view.setFloat32(this.#at, v);
    this.#at += 4;
    return this;
  }

  bool(v: boolean): this {
    this.#ensure(5);
    this.#int32(1);
    this.#buf[this.#at++] = v ? 1 : 0;
    return this;
  }

  /** timestamptz from epoch milliseconds. */
  timestamp(ms: number): this {
    this.#ensure(12);
    this.#int32(8);
    this.#view.setBigInt64(this.#at, BigInt(Math.round((ms - PG_EPOCH_MS) * 1000)));
    this.#at += 8;
    return this;
  }

  /** A point cube (cube_recv). */
  cube(v: readonly number[]): this {
    this.#ensure(8 + 8 * v.length);
    this.#int32(4 + 8 * v.length);
    this.#view.setUint32(this.#at, (POINT_BIT | v.length) >>> 0);
    this.#at += 4;
    for (const x of v) {
      this.#view.setFloat64(this.#at, x);
      this.#at += 8;
    }
    return this;
  }

  /**
   * A one-dimensional array's length and header (array_recv: dims, null flag, element type, length,
   * lower bound); its n elements, each a length and `size` bytes, follow.
   */
  #arrayHeader(oid: number, size: number, n: number): void {
    this.#ensure(24 + (4 + size) * n);
    this.#int32(20 + (4 + size) * n);
    this.#int32(1);
    this.#int32(0);
    this.#int32(oid);
    this.#int32(n);
    this.#int32(1);
  }

  /** real[] */
  float4Array(v: ArrayLike<number>): this {
    this.#arrayHeader(FLOAT4_OID, 4, v.length);
    for (let i = 0; i < v.length; i++) {
      this.#int32(4);
      this.#view.setFloat32(this.#at, v[i]!);
      this.#at += 4;
    }
    return this;
  }

  /** A one-dimensional array of n values of `size` bytes, value i written at `at` by `put`. */
  #values(oid: number, size: number, n: number, put: (at: number, i: number) => void): this {
    this.#arrayHeader(oid, size, n);
    for (let i = 0; i < n; i++) {
      this.#int32(size);
      put(this.#at, i);
      this.#at += size;
    }
    return this;
  }

  /** smallint[] of n values */
  int16Array(n: number, value: (i: number) => number): this {
    return this.#values(INT2_OID, 2, n, (at, i) => this.#view.setInt16(at, value(i)));
  }

  /** integer[] of n values */
  int32Array(n: number, value: (i: number) => number): this {
    return this.#values(INT4_OID, 4, n, (at, i) => this.#view.setInt32(at, value(i)));
  }

  /** real[] of n values */
  float4Values(n: number, value: (i: number) => number): this {
    return this.#values(FLOAT4_OID, 4, n, (at, i) => this.#view.setFloat32(at, value(i)));
  }

  /** boolean[] of n values */
  boolArray(n: number, value: (i: number) => boolean): this {
    return this.#values(BOOL_OID, 1, n, (at, i) => {
      this.#buf[at] = value(i) ? 1 : 0;
    });
  }

  finish(): Buffer {
    this.#ensure(2);
    this.#view.setInt16(this.#at, -1);
    this.#at += 2;
    return this.#buf.subarray(0, this.#at);
  }
}

/** The columns, in the order encodePatterns writes them. */
export const PATTERN_COPY_COLUMNS =
  'pattern_id, features, action, reward, attack_type, confidence, policy_confidence, created_at, model_version, episode_id, stage, cell';

export function encodePatterns(
  rows: readonly AttackPattern[],
  cells: readonly (number | null)[],
): Buffer {
  const out = new CopyWriter(rows.length * (120 + 8 * (rows[0]?.features.length ?? 0)));
  for (const [i, p] of rows.entries()) {
    out
      .tuple(12)
      .text(p.patternId)
      .cube(p.features)
      .int16(p.action)
      .float4(p.reward)
      .text(p.attackType)
      .float4(p.confidence)
      .float4(p.confidence)
      .timestamp(p.timestamp)
      .text(p.modelVersion)
      .text(p.episodeId)
      .int16(p.stage)
      .int32(cells[i] ?? null);
  }
  return out.finish();
}

/** The columns, in the order encodeTrajectoryStages writes them (migration 10). */
export const TRAJECTORY_STAGE_COPY_COLUMNS =
  'episode_id, stage, dim, steps, states, actions, rewards, dones';

/**
 * Each stage of these episodes as one trajectory_stages row: its steps' states end to end in one
 * real[] (steps × dim), and their step numbers, actions, rewards and done flags as arrays. One row
 * per step (migration 7's layout) cost PostgreSQL a heap tuple, an index entry and a WAL record
 * for every decision. Throws when a stage's states differ in length (the state dimension is fixed
 * for a process: telemetry.stateDim needs a restart).
 */
export function encodeTrajectoryStages(episodes: readonly EpisodeTrajectory[]): Buffer {
  const stages: { episodeId: string; stage: number; steps: TrajectoryStep[] }[] = [];
  let values = 0;
  for (const e of episodes) {
    const byStage = new Map<number, TrajectoryStep[]>();
    for (const s of e.steps) {
      const list = byStage.get(s.stage) ?? [];
      if (list.length === 0) byStage.set(s.stage, list);
      list.push(s);
      values += s.state.length;
    }
    for (const [stage, steps] of byStage) stages.push({ episodeId: e.episodeId, stage, steps });
  }
  const out = new CopyWriter(values * 8 + stages.length * 200);
  for (const { episodeId, stage, steps } of stages) {
    const dim = steps[0]!.state.length;
    const states = new Float32Array(steps.length * dim);
    for (const [i, s] of steps.entries()) {
      if (s.state.length !== dim)
        throw new RangeError(
          `episode ${episodeId} stage ${stage}: step ${s.step} has a state of ${s.state.length} values, step ${steps[0]!.step} of ${dim}`,
        );
      states.set(s.state, i * dim);
    }
    out
      .tuple(8)
      .text(episodeId)
      .int16(stage)
      .int16(dim)
      .int32Array(steps.length, (i) => steps[i]!.step)
      .float4Array(states)
      .int16Array(steps.length, (i) => steps[i]!.action)
      .float4Values(steps.length, (i) => steps[i]!.reward)
      .boolArray(steps.length, (i) => steps[i]!.done);
  }
  return out.finish();
}
