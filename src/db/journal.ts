// The durable local queue (requirement 6.3, property 26): rows the database could not take are
// appended here, fsync'd once per batch, and replayed in order when it is back.
//
//   <dir>/journal.log      JSON Lines, append-only; a torn last line (crash mid-write) is ignored
//                          and overwritten by the next append. A Float32Array (a trajectory step's
//                          state) is written as {"$f32": base64 of its little-endian bytes}: exact,
//                          a third of the bytes of a decimal list, and 10× cheaper to write (a
//                          200-step trajectory: 0.3-0.7 ms against 5-6.5 ms, the cost that decides
//                          whether the DB writer keeps up while the database is away). Lists from
//                          journals written before stay readable.
//   <dir>/journal.offset   byte offset of the first line not yet in the database (written by
//                          rename, so it is either the old or the new value)
//
// The log is emptied once every line is in the database, and compacted (its pending lines moved to
// a new file) once the lines already in the database are most of it and at least 16 MiB.
//
// A record can be replayed twice (crash between the database commit and the offset update): the
// database's idempotent keys make the second insert a no-op, so nothing is duplicated.

import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { WardenError } from '../runtime/errors.ts';
import { makeDirectory } from '../runtime/make-directory.ts';
import { decodeTyped, encodeTyped } from '../runtime/typed-json.ts';

/** Bytes pending() reads at a time: a replay batch never holds the whole journal in memory. */
const READ_CHUNK = 16 << 20;
/** Committed bytes from which commit() compacts the file (when they are also half of it). */
const COMPACT_FROM = 16 << 20;

export class JournalFullError extends WardenError {
  override readonly code = 'WARDEN_JOURNAL_FULL';
}

/** The journal's disk refused a write (full, read-only, failing): nothing of the batch was kept. */
export class JournalWriteError extends WardenError {
  override readonly code = 'WARDEN_JOURNAL_WRITE';
}

export interface JournalBatch<T> {
  /** The values of the batch's lines that parsed, in order. */
  readonly values: T[];
  /** Lines that did not parse (damaged on disk): skipped, and dropped by commit(end). */
  readonly unreadable: number;
  /** Offset just past the batch's last line: commit(end) once the values are stored. */
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
    makeDirectory(dir);
    this.#log = join(dir, 'journal.log');
    this.#offsetFile = join(dir, 'journal.offset');
    this.#maxBytes = maxBytes;
    this.#fd = openSync(this.#log, 'a+');
    rmSync(`${this.#log}.tmp`, { force: true }); // a compaction cut short by a crash
    this.#committed = existsSync(this.#offsetFile)
      ? Number(readFileSync(this.#offsetFile, 'utf8')) || 0
      : 0;
    this.#size = this.#completeLength();
    // Drop a torn tail so the next append starts on a line boundary.
    if (this.#size < fstatSync(this.#fd).size) ftruncateSync(this.#fd, this.#size);
    if (this.#committed > this.#size) this.#committed = this.#size;
  }

  /**
   * Bytes of complete lines in the file: up to its last newline, found by reading backwards from
   * the end (not the whole file: a journal may exceed the 2 GiB a single read can return).
   */
  #completeLength(): number {
    const size = fstatSync(this.#fd).size;
    const buf = Buffer.allocUnsafe(Math.min(size, 1 << 16));
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - buf.length);
      const read = readSync(this.#fd, buf, 0, end - start, start);
      const last = buf.subarray(0, read).lastIndexOf(0x0a);
      if (last >= 0) return start + last + 1;
      end = start;
    }
    return 0;
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

  /**
   * Appends a batch and fsyncs once. Throws JournalFullError when it would not fit, and
   * JournalWriteError when the disk refuses it (full, read-only); either way nothing of the batch
   * is kept: a partly written batch is cut off again, so the next append starts where it did.
   */
  append(values: readonly T[]): void {
    if (values.length === 0) return;
    const text = Buffer.from(values.map((v) => `${JSON.stringify(encodeTyped(v))}\n`).join(''));
    if (this.pendingBytes + text.length > this.#maxBytes) {
      throw new JournalFullError(
        `the local journal would exceed ${this.#maxBytes} bytes (database.journalMaxBytes); ${values.length} rows refused`,
      );
    }
    try {
      // A write to a filling disk can come back short before the next one fails.
      for (let done = 0; done < text.length; )
        done += writeSync(this.#fd, text, done, text.length - done, this.#size + done);
      fsyncSync(this.#fd);
    } catch (error) {
      try {
        ftruncateSync(this.#fd, this.#size);
      } catch {
        // shrinking a file needs no room: not expected to fail on a full disk
      }
      throw new JournalWriteError(
        `the local journal could not be written (${error instanceof Error ? error.message : String(error)}); ${values.length} rows refused`,
        { cause: error },
      );
    }
    this.#size += text.length;
  }

  /**
   * The next lines not yet committed, in order: at most `max` of them, and only those that end in
   * the first 16 MiB past the committed offset (at least one, however long), so a replay after a
   * long outage reads the journal a batch at a time instead of the whole file for every batch. A
   * line that does not parse is counted in `unreadable`, not returned: one damaged line must not
   * hold every later row back. Empty (no values, none unreadable) when nothing is pending.
   */
  pending(max: number): JournalBatch<T> {
    const values: T[] = [];
    let unreadable = 0;
    const from = this.#committed;
    let end = from;
    // The bytes up to #size are complete lines, so reading them all always finds one.
    for (let chunk = READ_CHUNK; end === from && from < this.#size; chunk *= 2) {
      const buf = Buffer.allocUnsafe(Math.min(chunk, this.#size - from));
      const read = readSync(this.#fd, buf, 0, buf.length, from);
      let start = 0;
      for (let lines = 0; lines < max; lines++) {
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0 || nl >= read) break;
        try {
          values.push(decodeTyped(JSON.parse(buf.toString('utf8', start, nl))) as T);
        } catch {
          unreadable++;
        }
        start = nl + 1;
        end = from + start;
      }
    }
    return { values, unreadable, end };
  }

  /**
   * Marks everything before `offset` as in the database; empties the file once all is, and
   * compacts it once the lines already in the database are most of it (see #compact).
   */
  commit(offset: number): void {
    this.#committed = offset;
    if (this.#committed >= this.#size) {
      ftruncateSync(this.#fd, 0);
      fsyncSync(this.#fd);
      this.#size = 0;
      this.#committed = 0;
    } else if (this.#committed >= COMPACT_FROM && this.#committed >= this.#size / 2) {
      try {
        this.#compact();
        return;
      } catch {
        // No room for the copy (a full disk): the log stays as it is, until the next commit.
        rmSync(`${this.#log}.tmp`, { force: true });
      }
    }
    this.#writeOffset(this.#committed);
  }

  /**
   * Moves the lines not yet in the database to the start of a new file. A replay that never quite
   * catches up (new rows keep queueing behind it while the database is loaded) never empties the
   * file, and the file kept growing past journalMaxBytes, which bounds only what is pending: a
   * run on a full disk left 417 MB for 82 MB pending. The pending lines go to a new file first;
   * the offset becomes 0 before that file replaces the log, so a crash in between replays the old
   * log from its start again, which the database's idempotent keys absorb, and never skips a line.
   */
  #compact(): void {
    const tmp = `${this.#log}.tmp`;
    const fd = openSync(tmp, 'w+');
    try {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.#size - this.#committed));
      for (let from = this.#committed, to = 0; from < this.#size; ) {
        const read = readSync(this.#fd, buf, 0, Math.min(buf.length, this.#size - from), from);
        for (let done = 0; done < read; ) done += writeSync(fd, buf, done, read - done, to + done);
        from += read;
        to += read;
      }
      fsyncSync(fd);
      this.#writeOffset(0);
      renameSync(tmp, this.#log);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size -= this.#committed;
    this.#committed = 0;
  }

  #writeOffset(offset: number): void {
    const tmp = `${this.#offsetFile}.tmp`;
    writeFileSync(tmp, String(offset));
    renameSync(tmp, this.#offsetFile);
  }

  close(): void {
    closeSync(this.#fd);
  }
}
