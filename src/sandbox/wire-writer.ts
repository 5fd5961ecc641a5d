// Writing the protobuf wire format by hand, for the sandbox contract's per-event messages: the
// dispatcher's ActionBatch (action-batch.ts) and the reference sandbox's EventBatch
// (event-batch.ts). Both size every nested message in a first pass, then write into one buffer.

/** Bytes of the varint of n (a non-negative integer up to 2^53). */
export const varintSize = (n: number): number => {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
};

/** A tag, a length and that many bytes: their size on the wire. */
export const lengthDelimited = (bytes: number): number => 1 + varintSize(bytes) + bytes;

/** UTF-8 length: ids and names are ASCII, which a loop tells faster than a native call. */
export function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++)
    if (s.charCodeAt(i) >= 128) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** Writes into a buffer of the size the first pass found (one-byte tags: fields 1–15). */
export class WireWriter {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    const buf = this.buf;
    while (n >= 128) {
      buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }
  tag(field: number, wireType: number): void {
    this.buf[this.pos++] = (field << 3) | wireType;
  }
  /** A string field whose UTF-8 length (utf8Length) is `bytes`. */
  string(field: number, s: string, bytes: number): void {
    this.tag(field, 2);
    this.varint(bytes);
    if (bytes === s.length) {
      // ASCII (every character one byte): a loop beats a call into the UTF-8 encoder for ids.
      const buf = this.buf;
      for (let i = 0; i < bytes; i++) buf[this.pos + i] = s.charCodeAt(i);
    } else this.buf.write(s, this.pos, bytes, 'utf8');
    this.pos += bytes;
  }
  float(field: number, v: number): void {
    this.tag(field, 5);
    this.pos = this.buf.writeFloatLE(v, this.pos);
  }
  /** Bytes already encoded, as they are. */
  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}
