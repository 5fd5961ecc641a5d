// The durable local queue (requirement 6.3, property 26): rows the database could not take are
// appended here, fsync'd once per batch, and replayed in order when it is back.
//
//   <dir>/journal.log      JSON Lines, append-only; a torn last line (crash mid-write) is ignored
//                          and overwritten by the next append
//   <dir>/journal.offset   byte offset of the first line not yet in the database (written by
//                          rename, so it is either the old or the new value)
//
// A record can be replayed twice (crash between the database commit and the offset update): the
// database's idempotent keys make the second insert a no-op, so nothing is duplicated.

import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { WardenError } from '../runtime/errors.ts';

/** JSON has no typed arrays (a Float32Array would become {"0": …}): they are written as lists. */
const typedArraysAsLists = (_key: string, value: unknown): unknown =>
  ArrayBuffer.isView(value) && !(value instanceof DataView)
    ? Array.from(value as unknown as ArrayLike<number>)
    : value;

export class JournalFullError extends WardenError {
  override readonly code = 'WARDEN_JOURNAL_FULL';
}

export interface JournalEntry<T> {
  readonly value: T;
  /** Offset just past this entry's line. */
  readonly end: number;
}

export class Journal<T> {
  readonly #log: string;
  readonly #offsetFile: string;
  readonly #maxBytes: number;
  #fd: number;
  #size: number;
  #committed: number;

  constructor(dir: string, maxBytes: number) {
    mkdirSync(dir, { recursive: true });
    this.#log = join(dir, 'journal.log');
    this.#offsetFile = join(dir, 'journal.offset');
    this.#maxBytes = maxBytes;
    this.#fd = openSync(this.#log, 'a+');
    this.#committed = existsSync(this.#offsetFile)
      ? Number(readFileSync(this.#offsetFile, 'utf8')) || 0
      : 0;
    this.#size = this.#completeLength();
    // Drop a torn tail so the next append starts on a line boundary.
    if (this.#size < statSync(this.#log).size) ftruncateSync(this.#fd, this.#size);
    if (this.#committed > this.#size) this.#committed = this.#size;
  }

  /** Bytes of complete lines in the file. */
  #completeLength(): number {
    const text = readFileSync(this.#log);
    const last = text.lastIndexOf(0x0a);
    return last < 0 ? 0 : last + 1;
  }

  /** Bytes not yet replayed into the database. */
  get pendingBytes(): number {
    return this.#size - this.#committed;
  }

  get sizeBytes(): number {
    return this.#size;
  }

  get hasPending(): boolean {
    return this.#size > this.#committed;
  }

  /** Appends a batch and fsyncs once. Throws JournalFullError (nothing written) when it would not fit. */
  append(values: readonly T[]): void {
    if (values.length === 0) return;
    const text = values.map((v) => `${JSON.stringify(v, typedArraysAsLists)}\n`).join('');
    const bytes = Buffer.byteLength(text);
    if (this.pendingBytes + bytes > this.#maxBytes) {
      throw new JournalFullError(
        `the local journal would exceed ${this.#maxBytes} bytes (database.journalMaxBytes); ${values.length} rows refused`,
      );
    }
    writeSync(this.#fd, text, this.#size);
    fsyncSync(this.#fd);
    this.#size += bytes;
  }

  /** Entries not yet committed, in order, at most `max` of them. */
  pending(max: number): JournalEntry<T>[] {
    if (!this.hasPending) return [];
    const buf = readFileSync(this.#log).subarray(this.#committed, this.#size);
    const out: JournalEntry<T>[] = [];
    let start = 0;
    while (out.length < max && start < buf.length) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      out.push({
        value: JSON.parse(buf.subarray(start, nl).toString('utf8')) as T,
        end: this.#committed + nl + 1,
      });
      start = nl + 1;
    }
    return out;
  }

  /** Marks everything before `offset` as in the database; empties the file once all is. */
  commit(offset: number): void {
    this.#committed = offset;
    if (this.#committed >= this.#size) {
      ftruncateSync(this.#fd, 0);
      fsyncSync(this.#fd);
      this.#size = 0;
      this.#committed = 0;
    }
    const tmp = `${this.#offsetFile}.tmp`;
    writeFileSync(tmp, String(this.#committed));
    renameSync(tmp, this.#offsetFile);
  }

  close(): void {
    closeSync(this.#fd);
  }
}
