// The embedded default database under faults: a server that dies (killed, or PostgreSQL giving up
// on a full disk) is started again with its data, the DB writer's journal carries the rows across,
// Warden's shutdown does not wait for a server that is already gone, and a server a killed run
// left behind does not keep the next run from starting.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import pino from 'pino';
import { type DbRecord, DbWriter } from '../../src/actors/db-writer/writer.ts';
import { createPool } from '../../src/db/connect.ts';
import { startEmbedded } from '../../src/db/embedded.ts';
import { Journal } from '../../src/db/journal.ts';
import { migrate } from '../../src/db/migrations.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { settlesWithin } from '../../src/runtime/within.ts';
import { attackPattern, tsSnippet } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

interface Line {
  readonly msg: string;
  readonly alert?: string;
  readonly signal?: string;
}

function capturingLogger(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Line) });
  return { log, lines };
}

const postmasterPid = (dataDir: string) =>
  Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

/** A fresh connection's answer, or undefined while the server is not taking connections. */
async function probe(url: string, sql: string): Promise<unknown[] | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.query(sql)).rows;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function waitFor<T>(what: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await what();
    if (got !== undefined || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const pattern = (id: string) => attackPattern(id);

test('a killed embedded server is started again with its data, and the journal fills the gap', async (t) => {
  const dataDir = join(tempDir('warden-embedded-'), 'pg');
  const { log, lines } = capturingLogger();
  const server = await startEmbedded(dataDir, log, undefined, {});
  const pool = createPool(server.url, silentLogger);
  try {
    const client = await pool.connect();
    await migrate(client).finally(() => client.release());
    const writer = new DbWriter(pool, new Journal<DbRecord>(tempDir('warden-journal-'), 1 << 20), {
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    });
    t.is(await writer.write([pattern('before-kill')]), 'persisted');

    process.kill(postmasterPid(dataDir), 'SIGKILL');
    // Until the server is back, rows wait in the journal. (A backend of the killed server may
    // still take the write before it notices, or the new server may already be up: either way
    // the row must end up stored once.)
    const outcome = await writer.write([pattern('while-down')]);
    t.true(outcome === 'queued' || outcome === 'persisted', outcome);
    t.log(`written while the server was down: ${outcome}`);

    const rows = await waitFor(
      () => probe(server.url, `SELECT pattern_id FROM attack_patterns ORDER BY pattern_id`),
      60_000,
    );
    t.deepEqual(
      rows,
      outcome === 'queued'
        ? [{ pattern_id: 'before-kill' }]
        : [{ pattern_id: 'before-kill' }, { pattern_id: 'while-down' }],
      'back with the rows it had',
    );
    const down = lines.find((l) => l.alert === 'warden_embedded_postgres_down');
    t.is(down?.signal, 'SIGKILL', 'the exit is logged with an alert');
    t.true(lines.some((l) => l.msg === 'embedded PostgreSQL started again'));

    await writer.retry();
    t.is(writer.journalBytes, 0, 'the journal was replayed');
    t.is(writer.stats.refused, 0);
    t.deepEqual(
      await probe(server.url, `SELECT pattern_id FROM attack_patterns ORDER BY pattern_id`),
      [{ pattern_id: 'before-kill' }, { pattern_id: 'while-down' }],
    );
  } finally {
    await pool.end().catch(() => undefined);
    await server.stop();
  }
});

test('stopping right after the server died returns instead of waiting for it', async (t) => {
  const dataDir = join(tempDir('warden-embedded-'), 'pg');
  const { log, lines } = capturingLogger();
  const server = await startEmbedded(dataDir, log, undefined, {});
  process.kill(postmasterPid(dataDir), 'SIGKILL');
  await waitFor(async () => lines.find((l) => l.alert === 'warden_embedded_postgres_down'), 10_000);
  // The restart waits 1 s first: stop() normally comes within it (on a starved machine the
  // restart may be under way, and is stopped with it). Nothing is started after it.
  t.true(await settlesWithin(server.stop(), 20_000), 'stop() returned');
  const stopped = lines.findIndex((l) => l.msg === 'embedded PostgreSQL stopped');
  t.true(stopped >= 0);
  await new Promise((r) => setTimeout(r, 1_500));
  t.false(lines.slice(stopped).some((l) => l.msg === 'embedded PostgreSQL started again'));
  t.is(await probe(server.url, 'SELECT 1'), undefined, 'no server left running');
});

test('a server left running by a killed Warden is stopped, and the directory starts again with its data', async (t) => {
  const dataDir = join(tempDir('warden-embedded-'), 'pg');
  // A Warden-like process starts the server, creates a table, and is killed with SIGKILL: no
  // shutdown runs, so its server is left running, adopted by init, holding the directory.
  const embedded = new URL('../../src/db/embedded.ts', import.meta.url).href;
  const child = spawn(
    process.execPath,
    tsSnippet(
      `import { startEmbedded } from ${JSON.stringify(embedded)};
       import pg from 'pg';
       import pino from 'pino';
       const db = await startEmbedded(${JSON.stringify(dataDir)}, pino({ level: 'silent' }), undefined, {});
       const c = new pg.Client({ connectionString: db.url });
       await c.connect();
       await c.query('CREATE TABLE left_behind (x int); INSERT INTO left_behind VALUES (7)');
       console.log('ready');`,
    ),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ready = await new Promise<boolean>((resolve) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(true));
    child.once('exit', () => resolve(false));
  });
  t.true(ready, 'the first process started its server');
  const leftover = postmasterPid(dataDir);
  t.teardown(() => {
    try {
      process.kill(leftover, 'SIGKILL'); // should the start below not have stopped it
    } catch {
      // gone, as it should be
    }
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  const { log, lines } = capturingLogger();
  const server = await startEmbedded(dataDir, log, undefined, {});
  try {
    t.true(
      lines.some((l) => l.msg === 'stopping the embedded PostgreSQL a killed run left behind'),
    );
    t.not(postmasterPid(dataDir), leftover, 'a new server runs');
    t.deepEqual(await probe(server.url, 'SELECT x FROM left_behind'), [{ x: 7 }]);
  } finally {
    await server.stop();
  }
});

test('a directory whose server a live process runs is refused with a clear error', async (t) => {
  const dataDir = join(tempDir('warden-embedded-'), 'pg');
  const first = await startEmbedded(dataDir, silentLogger, undefined, {});
  try {
    await t.throwsAsync(startEmbedded(dataDir, silentLogger, undefined, {}), {
      message: /is in use \(server pid \d+, started by process \d+\): stop that Warden first/,
    });
    t.deepEqual(
      await probe(first.url, 'SELECT 1 AS one'),
      [{ one: 1 }],
      'the first server is untouched',
    );
  } finally {
    await first.stop();
  }
});

/** The server's processes: the postmaster and its children (backends, checkpointer, …). */
function serverProcesses(postmaster: number): number[] {
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [postmaster, ...children];
}

test('a stalled server: a batch not committed within database.writeTimeoutMs goes to the journal, and is stored once later', async (t) => {
  const dataDir = join(tempDir('warden-embedded-'), 'pg');
  const server = await startEmbedded(dataDir, silentLogger, undefined, {});
  const pool = createPool(server.url, silentLogger);
  let stalled: number[] = [];
  const signal = (s: NodeJS.Signals) => {
    for (const pid of stalled) {
      try {
        process.kill(pid, s);
      } catch {
        // a child that has exited
      }
    }
  };
  try {
    const client = await pool.connect();
    await migrate(client).finally(() => client.release());
    const writer = new DbWriter(
      pool,
      new Journal<DbRecord>(tempDir('warden-journal-'), 1 << 20),
      { info: () => undefined, warn: () => undefined, error: () => undefined },
      // Short for a test, long enough that a loaded machine does not miss it with a live server.
      { writeTimeoutMs: 5_000 },
    );
    t.is(await writer.write([pattern('before-stall')]), 'persisted');
    stalled = serverProcesses(postmasterPid(dataDir)); // with the writer's open connection
    signal('SIGSTOP'); // the server stops answering; its connections stay open
    const outcome = await Promise.race([
      writer.write([pattern('during-stall')]),
      new Promise((r) => setTimeout(() => r('still waiting after 30 s'), 30_000)),
    ]);
    t.is(outcome, 'queued', 'the batch went to the journal at its deadline');
    signal('SIGCONT');
    await writer.retry();
    t.is(writer.journalBytes, 0);
    t.deepEqual(
      await probe(server.url, `SELECT pattern_id FROM attack_patterns ORDER BY pattern_id`),
      [{ pattern_id: 'before-stall' }, { pattern_id: 'during-stall' }],
      'each row stored once',
    );
  } finally {
    signal('SIGCONT');
    await pool.end().catch(() => undefined);
    await server.stop();
  }
});
