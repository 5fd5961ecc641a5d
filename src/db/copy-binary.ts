// PostgreSQL's binary COPY format for attack patterns — the DB writer's fast path for new rows.
// COPY takes the server's bulk-insert path (several rows per page and per WAL record, the heap
// extended many pages at a time) and reads values without parsing; INSERT … SELECT unnest(…)
// contended on extending the table and evaluated an expression per column per row. pg-copy-streams
// carries the bytes; PostgreSQL defines the layout (docs: COPY, "Binary Format"), and the cube
// extension's cube_recv (cube ≥ 1.5) its value: a header word (point flag | dimensions) then
// big-endian doubles.

import type { AttackPattern } from '../messages/pattern.ts';

/** The columns, in the order the encoder writes them. */
export const PATTERN_COPY_COLUMNS =
  'pattern_id, features, action, reward, attack_type, confidence, policy_confidence, created_at, model_version, episode_id, stage, cell';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const POINT_BIT = 0x80000000;
/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

/** One COPY stream's bytes: header, a tuple per pattern, trailer. */
export function encodePatterns(
  rows: readonly AttackPattern[],
  cells: readonly (number | null)[],
): Buffer {
  let size = SIGNATURE.length + 8 + 2;
  const texts = rows.map((p) =>
    [p.patternId, p.attackType, p.modelVersion, p.episodeId].map((t) => Buffer.from(t, 'utf8')),
  );
  for (const [i, p] of rows.entries()) {
    size += 2 + 12 * 4; // field count, then a length word per field
    size += 4 + 8 * p.features.length + 2 + 4 + 4 + 4 + 8 + 2 + (cells[i] === null ? 0 : 4);
    for (const t of texts[i]!) size += t.length;
  }
  const buf = Buffer.allocUnsafe(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  SIGNATURE.copy(buf, 0);
  let at = SIGNATURE.length;
  view.setInt32(at, 0); // flags
  view.setInt32(at + 4, 0); // header extension length
  at += 8;
  const text = (b: Buffer) => {
    view.setInt32(at, b.length);
    b.copy(buf, at + 4);
    at += 4 + b.length;
  };
  const int16 = (v: number) => {
    view.setInt32(at, 2);
    view.setInt16(at + 4, v);
    at += 6;
  };
  const float4 = (v: number) => {
    view.setInt32(at, 4);
    view.setFloat32(at + 4, v);
    at += 8;
  };
  for (const [i, p] of rows.entries()) {
    const [id, attackType, modelVersion, episodeId] = texts[i]!;
    view.setInt16(at, 12);
    at += 2;
    text(id!);
    view.setInt32(at, 4 + 8 * p.features.length);
    view.setUint32(at + 4, (POINT_BIT | p.features.length) >>> 0);
    at += 8;
    for (const x of p.features) {
      view.setFloat64(at, x);
      at += 8;
    }
    int16(p.action);
    float4(p.reward);
    text(attackType!);
    float4(p.confidence);
    float4(p.confidence);
    view.setInt32(at, 8);
    view.setBigInt64(at + 4, BigInt(Math.round((p.timestamp - PG_EPOCH_MS) * 1000)));
    at += 12;
    text(modelVersion!);
    text(episodeId!);
    int16(p.stage);
    const cell = cells[i];
    if (cell === null || cell === undefined) {
      view.setInt32(at, -1);
      at += 4;
    } else {
      view.setInt32(at, 4);
      view.setInt32(at + 4, cell);
      at += 8;
    }
  }
  view.setInt16(at, -1);
  at += 2;
  if (at !== size) throw new Error(`COPY encoding: wrote ${at} of ${size} bytes`);
  return buf;
}
