// PostgreSQL's binary COPY format — the DB writer's path for new patterns and trajectories. COPY
// takes the server's bulk-insert path (several rows per page and per WAL record, the heap extended
// many pages at a time) and reads values without parsing; INSERT … SELECT unnest(…) contended on
// extending the table and evaluated an expression per column per row. pg-copy-streams carries the
// bytes; PostgreSQL defines the layout (docs: COPY, "Binary Format"), the cube extension's
// cube_recv (cube ≥ 1.5) its value: a header word (point flag | dimensions), big-endian doubles.

import type { AttackPattern } from '../messages/pattern.ts';
import type { EpisodeTrajectory } from '../messages/trajectory.ts';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const POINT_BIT = 0x80000000;
const FLOAT4_OID = 700;
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

  /** A one-dimensional real[] (array_recv: dims, null flag, element type, length, lower bound). */
  float4Array(v: ArrayLike<number>): this {
    this.#ensure(24 + 8 * v.length);
    this.#int32(20 + 8 * v.length);
    this.#int32(1);
    this.#int32(0);
    this.#int32(FLOAT4_OID);
    this.#int32(v.length);
    this.#int32(1);
    for (let i = 0; i < v.length; i++) {
      this.#int32(4);
      this.#view.setFloat32(this.#at, v[i]!);
      this.#at += 4;
    }
    return this;
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

/** The columns, in the order encodeTrajectories writes them. */
export const TRAJECTORY_COPY_COLUMNS = 'episode_id, stage, step, state, action, reward, done';

/** Every step of these episodes as trajectory rows (next_state is left NULL: see migration 7). */
export function encodeTrajectories(episodes: readonly EpisodeTrajectory[]): Buffer {
  const steps = episodes.reduce((n, e) => n + e.steps.length, 0);
  const dim = episodes[0]?.steps[0]?.state.length ?? 0;
  const out = new CopyWriter(steps * (100 + 8 * dim));
  for (const e of episodes)
    for (const s of e.steps)
      out
        .tuple(7)
        .text(e.episodeId)
        .int16(s.stage)
        .int32(s.step)
        .float4Array(s.state)
        .int16(s.action)
        .float4(s.reward)
        .bool(s.done);
  return out.finish();
}
