// Reading the protobuf wire format by hand, for the sandbox contract's hottest messages: the
// receiver's EventBatch (actors/receiver/wire.ts) and the reference sandbox's ActionBatch
// (action-batch.ts). Where a message is read per event, protobufjs's decode + toObject builds
// objects nobody keeps; these primitives read fields in place. Every read checks its bounds, so
// bytes from the other side can only make a read fail with a MalformedError.

/** The bytes are not the message they should be (a truncated field, a wrong wire type, …). */
export class MalformedError extends Error {}

export const VARINT = 0;
export const FIXED64 = 1;
export const BYTES = 2;
export const FIXED32 = 5;

/** A cursor over one message's bytes; every read checks it stays inside `end`. */
export class Cursor {
  pos = 0;
  end = 0;
  /** The last 64-bit varint, as two 32-bit halves. */
  lo = 0;
  hi = 0;

  constructor(readonly buf: Buffer) {}

  varint(): void {
    const b = this.buf;
    if (this.pos < this.end && b[this.pos]! < 0x80) {
      this.lo = b[this.pos++]!;
      this.hi = 0;
      return;
    }
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new MalformedError('truncated varint');
      const byte = b[this.pos++]!;
      if (i < 4) lo |= (byte & 0x7f) << shift;
      else if (i === 4) {
        lo |= (byte & 0x7f) << 28;
        hi |= (byte & 0x7f) >>> 4;
      } else hi |= (byte & 0x7f) << (7 * i - 32);
      if (byte < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
      shift += 7;
    }
    throw new MalformedError('varint longer than ten bytes');
  }

  /** The wire type of the field field() read last. */
  wireType = 0;

  /** Reads a field's tag: returns its number and sets wireType; field number 0 is malformed. */
  field(): number {
    const tag = this.uint32();
    this.wireType = tag & 7;
    const field = tag >>> 3;
    if (field === 0) throw new MalformedError('field number 0');
    return field;
  }

  uint32(): number {
    this.varint();
    return this.lo;
  }

  /** uint64 as a number (LongBits.toNumber(true)). */
  uint64(): number {
    this.varint();
    return this.lo + this.hi * 4294967296;
  }

  /** int64 as a number (LongBits.toNumber(false)). */
  int64(): number {
    this.varint();
    if (this.hi >>> 31 === 0) return this.lo + this.hi * 4294967296;
    const lo = (~this.lo + 1) >>> 0;
    let hi = ~this.hi >>> 0;
    if (lo === 0) hi = (hi + 1) >>> 0;
    return -(lo + hi * 4294967296);
  }

  /** A length-delimited field: sets pos past it and returns where it starts. */
  delimited(): number {
    const length = this.uint32();
    if (length > this.end - this.pos) throw new MalformedError('length past the end');
    const start = this.pos;
    this.pos += length;
    return start;
  }

  double(): number {
    if (this.end - this.pos < 8) throw new MalformedError('truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  float(): number {
    if (this.end - this.pos < 4) throw new MalformedError('truncated float');
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.advance(8);
    else if (wireType === BYTES) this.delimited();
    else if (wireType === FIXED32) this.advance(4);
    else throw new MalformedError(`wire type ${wireType}`);
  }

  advance(n: number): void {
    if (this.end - this.pos < n) throw new MalformedError('truncated field');
    this.pos += n;
  }

  /**
   * A UTF-8 string field. Short ones (ids, API names, categories) come from a cache keyed by their
   * bytes, so the same name is the same string object every time: no string is built for it, and
   * the Map lookups after (interning, categories) find its hash already computed.
   */
  text(start: number, end: number): string {
    const b = this.buf;
    const n = end - start;
    if (n > CACHED_BYTES) return b.toString('utf8', start, end);
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    const slot = (h >>> 0) & (CACHE_SLOTS - 1);
    const off = slot * CACHED_BYTES;
    if (cacheLength[slot] === n && cacheText[slot] !== undefined) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (cacheBytes[off + i] !== b[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return cacheText[slot]!;
    }
    const text = b.toString('utf8', start, end);
    b.copy(cacheBytes, off, start, end);
    cacheLength[slot] = n;
    cacheText[slot] = text;
    return text;
  }
}

// The short-string cache (Cursor.text): direct-mapped, 4,096 slots of at most 64 bytes. Input can
// only make it miss.
const CACHED_BYTES = 64;
const CACHE_SLOTS = 4096;
const cacheBytes = Buffer.alloc(CACHE_SLOTS * CACHED_BYTES);
const cacheLength = new Int32Array(CACHE_SLOTS).fill(-1);
const cacheText: (string | undefined)[] = new Array(CACHE_SLOTS).fill(undefined);
