// The durable journal's own format: typed arrays round-trip exactly, lines written by the earlier
// (decimal list) format stay readable, and a replay reads the file a bounded batch at a time.

import { appendFileSync, existsSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import pino from 'pino';
import { type DbRecord, DbWriter } from '../../src/actors/db-writer/writer.ts';
import { databaseTrouble } from '../../src/cli/start.ts';
import { createPool } from '../../src/db/connect.ts';
import { freePort } from '../../src/db/embedded.ts';
import { Journal, JournalWriteError } from '../../src/db/journal.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { attackPattern } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

interface Row {
  readonly id: number;
  readonly steps: readonly { readonly state: Float32Array | number[]; readonly reward: number }[];
  readonly other?: Int32Array | number[];
}

/** Everything pending, committing as it goes (as the DB writer's replay does). */
function drain<T>(journal: Journal<T>, batch: number): T[] {
  const out: T[] = [];
  for (
    let b = journal.pending(batch);
    b.values.length + b.unreadable > 0;
    b = journal.pending(batch)
  ) {
    out.push(...b.values);
    journal.commit(b.end);
  }
  return out;
}

test('Float32Array states come back as the same float32 values, other views as lists', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.float({ noNaN: false }), { maxLength: 70 }), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.nat(3),
      (states, offset) => {
        const journal = new Journal<Row>(tempDir('warden-journal-f32-'), 1 << 24);
        // A view that does not start at its buffer's start, as a subarray of a packed block would.
        const steps = states.map((s, i) => {
          const backing = new Float32Array(s.length + offset);
          backing.set(s, offset);
          return { state: backing.subarray(offset), reward: i / 2 };
        });
        journal.append([{ id: 1, steps, other: Int32Array.from([3, -4]) }]);
        const [back] = drain(journal, 10);
        journal.close();
        t.is(back!.steps.length, steps.length);
        for (let i = 0; i < steps.length; i++) {
          const got = back!.steps[i]!;
          t.true(got.state instanceof Float32Array);
          t.deepEqual(Array.from(got.state), Array.from(steps[i]!.state));
          t.is(got.reward, steps[i]!.reward);
        }
        t.deepEqual(back!.other, [3, -4]);
      },
    ),
    { numRuns: 100 },
  );
});

test('a journal line of the earlier format (states as decimal lists) is still read', (t) => {
  const dir = tempDir('warden-journal-old-');
  const journal = new Journal<Row>(dir, 1 << 20);
  journal.close();
  const old: Row = { id: 7, steps: [{ state: [0.25, 1], reward: -1 }] };
  appendFileSync(join(dir, 'journal.log'), `${JSON.stringify(old)}\n`);
  const reopened = new Journal<Row>(dir, 1 << 20);
  reopened.append([{ id: 8, steps: [{ state: Float32Array.from([0.5]), reward: 0 }] }]);
  const rows = drain(reopened, 10);
  reopened.close();
  t.deepEqual(rows[0], old);
  t.deepEqual(Array.from(rows[1]!.steps[0]!.state), [0.5]);
  t.true(readFileSync(join(dir, 'journal.log'), 'utf8') === '', 'emptied once all was committed');
});

test('a replay reads the journal a batch at a time, in order, whatever the line lengths', (t) => {
  const journal = new Journal<{ id: number; pad: string }>(tempDir('warden-journal-big-'), 1 << 27);
  // About 40 MiB of rows, one of them longer than the 16 MiB read chunk on its own.
  const rows = Array.from({ length: 41 }, (_, id) => ({
    id,
    pad: 'x'.repeat(id === 20 ? 17 << 20 : 560_000),
  }));
  for (let i = 0; i < rows.length; i += 5) journal.append(rows.slice(i, i + 5));
  const first = journal.pending(1_000).values;
  t.true(first.length < rows.length, 'one call does not read the whole file');
  t.deepEqual(
    first.map((r) => r.id),
    rows.slice(0, first.length).map((r) => r.id),
  );
  const ids = drain(journal, 1_000).map((r) => r.id);
  journal.close();
  t.deepEqual(
    ids,
    rows.map((r) => r.id),
  );
});

test('a line damaged on disk is skipped and counted; the rows after it are replayed', (t) => {
  const dir = tempDir('warden-journal-damaged-');
  const journal = new Journal<{ id: number }>(dir, 1 << 20);
  journal.append([{ id: 1 }]);
  journal.close();
  appendFileSync(join(dir, 'journal.log'), '{"id": 2, "tr\u0000uncated\n');
  const reopened = new Journal<{ id: number }>(dir, 1 << 20);
  reopened.append([{ id: 3 }]);
  const batch = reopened.pending(10);
  t.deepEqual(batch.values, [{ id: 1 }, { id: 3 }]);
  t.is(batch.unreadable, 1);
  reopened.commit(batch.end);
  t.false(reopened.hasPending);
  // A damaged line alone in a batch still moves the replay on.
  appendFileSync(join(dir, 'journal.log'), 'not json\n');
  reopened.close();
  const again = new Journal<{ id: number }>(dir, 1 << 20);
  const alone = again.pending(10);
  t.deepEqual(alone.values, []);
  t.is(alone.unreadable, 1);
  again.commit(alone.end);
  t.false(again.hasPending);
  again.close();
});

test('a torn tail of any length is dropped at open; the complete lines before it are kept', (t) => {
  for (const torn of [1, 70_000, 300_000]) {
    const dir = tempDir('warden-journal-torn-');
    const journal = new Journal<{ id: number; pad?: string }>(dir, 1 << 22);
    journal.append([{ id: 1, pad: 'y'.repeat(100_000) }, { id: 2 }]);
    journal.close();
    // A crash mid-append: part of a line, no newline (longer than one backward read at 300 kB).
    appendFileSync(join(dir, 'journal.log'), `{"id":3,"pad":"${'z'.repeat(torn)}`);
    const reopened = new Journal<{ id: number; pad?: string }>(dir, 1 << 22);
    reopened.append([{ id: 4 }]);
    t.deepEqual(
      drain(reopened, 10).map((r) => r.id),
      [1, 2, 4],
      `torn tail of ${torn} bytes`,
    );
    reopened.close();
  }
});

/** A journal whose file is /dev/full: every write fails with ENOSPC, as on a full disk. */
function journalOnFullDisk<T>(): Journal<T> {
  const dir = tempDir('warden-journal-full-');
  symlinkSync('/dev/full', join(dir, 'journal.log'));
  return new Journal<T>(dir, 1 << 20);
}

test('a batch the disk refuses is refused whole: nothing pending, a clear error', (t) => {
  const journal = journalOnFullDisk<Row>();
  const error = t.throws(() => journal.append([{ id: 1, steps: [] }]), {
    instanceOf: JournalWriteError,
  });
  t.regex(error?.message ?? '', /ENOSPC.*1 rows refused/);
  t.false(journal.hasPending);
  t.is(journal.sizeBytes, 0);
});

test('the DB writer counts every row the journal cannot take and logs the run of failures once', async (t) => {
  const lines: { msg: string; alert?: string; times?: number; rows?: number }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  // The database is away (nothing listens on the port) and the journal's disk is full.
  const pool = createPool(`postgres://warden:x@127.0.0.1:${await freePort()}/warden`, silentLogger);
  const writer = new DbWriter(pool, journalOnFullDisk<DbRecord>(), log);
  const record = (i: number): DbRecord => attackPattern(`p-${i}`);
  try {
    for (let i = 0; i < 20; i++) t.is(await writer.write([record(i)]), 'refused');
  } finally {
    await pool.end();
  }
  t.is(writer.stats.refused, 20, 'every refused row is counted');
  t.is(
    databaseTrouble({ ...writer.stats, journalBytes: writer.journalBytes }),
    '  database: 20 rows refused',
    'and the progress line of warden start shows them',
  );
  const refusals = lines.filter((l) => l.alert === 'warden_journal_unwritable');
  t.is(refusals.length, 1, 'one line for a run of failures within 10 s, not one per batch');
  t.like(refusals[0], { msg: 'local journal not writable: rows refused', times: 1, rows: 1 });
});

test('a replay that never catches up does not let the file grow: it is compacted, lines kept in order', (t) => {
  const dir = tempDir('warden-journal-compact-');
  const journal = new Journal<Row>(dir, 1 << 30);
  const pad = 'x'.repeat(4_000);
  let next = 0;
  const appendMiB = (mib: number) => {
    for (let i = 0; i < mib * 256; i++) journal.append([{ id: next++, steps: [], pad } as Row]);
  };
  const fileBytes = () => statSync(join(dir, 'journal.log')).size;
  // New rows keep arriving while the replay takes the oldest: the journal is never empty.
  let expected = 0;
  for (let round = 0; round < 6; round++) {
    appendMiB(8);
    const batch = journal.pending(7 * 256);
    t.deepEqual(
      batch.values.map((v) => v.id),
      Array.from({ length: batch.values.length }, (_, i) => expected + i),
    );
    expected += batch.values.length;
    journal.commit(batch.end);
  }
  t.true(journal.hasPending);
  t.true(fileBytes() < 40 << 20, `file ${fileBytes()} bytes for 48 MiB appended`);
  t.is(fileBytes(), journal.sizeBytes);
  // What is left is the rows not yet replayed, in order, also after a reopen.
  journal.close();
  const reopened = new Journal<Row>(dir, 1 << 30);
  t.deepEqual(
    drain(reopened, 10_000).map((v) => v.id),
    Array.from({ length: next - expected }, (_, i) => expected + i),
  );
  t.false(existsSync(join(dir, 'journal.log.tmp')));
  reopened.close();
});
