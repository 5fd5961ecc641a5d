// Logs as an operator reads them (properties 33, 35, 36): daily JSON-lines files per thread under
// logging.dir; every decision with its action and confidence, every transition with its action
// and reward, and every actor error with its stack, actor and episode — from the real adapter,
// inference pool and episodes actor on worker threads.

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { ACTOR_MODULES } from '../../src/actors/index.ts';
import type { SandboxEvent } from '../../src/messages/index.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { ReferenceSandbox } from '../../src/sandbox/reference-sandbox.ts';
import { callEvent } from '../../src/telemetry/call-event.ts';
import {
  actorStats,
  dispatchedDecisions,
  episodeStarted,
  fixtureActor,
  Inbox,
  recordedTrace,
  sandboxBatch,
  sandboxesAt,
  testConfig,
  tsSnippet,
  until,
} from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

type Line = Record<string, unknown> & { level: number; msg: string };

function readLogs(dir: string): { files: string[]; lines: Line[] } {
  const files = readdirSync(dir).sort();
  const lines = files.flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line),
  );
  return { files, lines };
}

test('every decision, transition and actor error is in the daily log files of its thread', async (t) => {
  const dir = tempDir('warden-logs-');
  const system = new ActorSystem({
    config: testConfig({
      logging: { level: 'debug', dir, keepDays: 30 },
      runtime: {
        placement: {
          hot: ['adapter'],
          control: ['episodes'],
          sinks: ['dispatcher', 'db-writer', 'learner', 'a'],
        },
      },
      inference: { workers: 1 },
      models: { dir: join(dir, 'no-models') },
    }),
    modules: {
      ...ACTOR_MODULES,
      dispatcher: fixtureActor('sink'),
      'db-writer': fixtureActor('sink'),
      learner: fixtureActor('sink'),
      a: fixtureActor('echo'),
    },
  });
  const decisions = dispatchedDecisions(system);
  const inbox = new Inbox(system);
  await system.start();
  const base = { sandboxId: 'lab', episodeId: 'ep-log', stage: 1 as const };
  const send = (events: SandboxEvent[]) => system.send('adapter', sandboxBatch('lab', events));
  try {
    await inbox.waitFor((m) => m.type === 'model-activated');
    send([
      episodeStarted(base),
      ...Array.from({ length: 12 }, (_, i) =>
        callEvent(
          { ...base, artifactHash: 'h', artifactType: 'exe' },
          i,
          i,
          i % 2 ? 'NtClose' : 'GetTickCount',
        ),
      ),
    ]);
    t.true(await until(async () => decisions.length === 12));
    send([
      {
        type: 'stage-outcome',
        ...base,
        timestamp: Date.now(),
        eventsObserved: 12,
        sandboxDetected: false,
        cleaned: false,
        cleaningSucceeded: false,
        groundTruth: 'benign',
        family: null,
      },
    ]);
    await new Promise((r) => setTimeout(r, 300));
    system.send('a', { type: 'throw', episodeId: 'ep-crash' } as never);
    await inbox
      .waitFor((m) => m.type === 'pong' || m.type === 'never', 1_000)
      .catch(() => undefined);
  } finally {
    await system.stop();
  }

  const { files, lines } = readLogs(dir);
  const day = new Date().toLocaleDateString('sv'); // yyyy-MM-dd in local time, as pino-roll names it
  for (const thread of ['hot', 'control', 'sinks', 'inference-0'])
    t.true(
      files.some((f) => f.startsWith(`warden-${thread}.`) && f.endsWith('.log')),
      `a file for thread ${thread} in ${files.join(', ')}`,
    );
  t.true(files.every((f) => /^warden-[\w.-]+\.\d{4}-\d{2}-\d{2}\.\d+\.log$/.test(f)));
  t.true(
    files.every((f) => f.includes(`.${day}.`)),
    'named after the day (local time)',
  );

  // Property 35: each decision that left the adapter is logged with its action and confidence.
  const logged = lines.filter((l) => l.event === 'decision' && l.episodeId === 'ep-log');
  t.is(logged.length, decisions.length);
  for (const d of decisions) {
    const line = logged.find((l) => l.seq === d.seq);
    t.truthy(line, `decision ${d.seq} logged`);
    t.is(line?.action, d.action);
    t.true(Math.abs((line?.confidence as number) - d.context.confidence) < 1e-6);
  }
  // Property 33: every transition of the stage, with action and reward; the last one is terminal.
  const transitions = lines
    .filter((l) => l.event === 'transition' && l.episodeId === 'ep-log')
    .sort((a, b) => (a.step as number) - (b.step as number));
  t.is(transitions.length, decisions.length);
  t.deepEqual(
    transitions.map((l) => l.action),
    [...decisions].sort((a, b) => a.seq - b.seq).map((d) => d.action),
  );
  t.true(transitions.every((l) => typeof l.reward === 'number'));
  t.true(transitions.at(-1)?.done === true);

  // Property 36: the error with its stack, its actor, and the episode of the message.
  const crash = lines.find((l) => l.msg === 'actor crashed' && l.actor === 'a');
  t.truthy(crash, 'the crash is logged');
  t.is(crash?.level, 50);
  t.regex(
    String((crash?.err as { stack?: string } | undefined)?.stack),
    /a was asked to throw\n\s+at /,
  );
  t.is(crash?.episodeId, 'ep-crash');
  t.is(crash?.messageType, 'throw');
});

test('a log file the disk refuses does not end the process: its lines go on to stdout, with an alert', async (t) => {
  const dir = tempDir('warden-logs-full-');
  // Today's file for the thread is /dev/full: every write fails with ENOSPC, as on a full disk.
  const day = new Date().toLocaleDateString('sv');
  symlinkSync('/dev/full', join(dir, `warden-main.${day}.1.log`));
  const logger = new URL('../../src/runtime/logger.ts', import.meta.url).href;
  const child = spawnSync(
    process.execPath,
    tsSnippet(
      `import { componentLogger, configureLogOutput } from ${JSON.stringify(logger)};
       await configureLogOutput({ dir: ${JSON.stringify(dir)}, keepDays: 3 }, 'main');
       const log = componentLogger('test');
       log.info('into the file');
       await new Promise((r) => setTimeout(r, 300));
       log.info('after the failure');
       await new Promise((r) => setTimeout(r, 100));`,
    ),
    { encoding: 'utf8', timeout: 30_000 },
  );
  t.is(child.status, 0, child.stderr);
  const lines = child.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
  t.like(
    lines.find((l) => l.alert === 'warden_log_unwritable'),
    {
      level: 50,
      dir,
      msg: 'log file not writable: this thread logs to stdout from now on (lines buffered for the file are lost)',
    },
  );
  t.true(lines.some((l) => l.msg === 'after the failure'));
});

/** A reference sandbox refusing every Act call, and a Warden retrying after `retryDelaysMs`. */
async function refusingRun(dir: string, retryDelaysMs: number[]) {
  const calls = ['NtOpenFile', 'NtReadFile', 'RegSetValueExW', 'NtClose', 'connect', 'send'];
  const sandbox = new ReferenceSandbox({
    name: 'refusing',
    traces: Array.from({ length: 8 }, (_, i) =>
      recordedTrace(`r${i}`, i % 2 ? 'benign' : 'malicious', calls),
    ),
    benign: [recordedTrace('b', 'benign', calls)],
    episodes: 8,
    concurrency: 4,
    // Long enough for Warden's decisions to come before the sandbox ends a stage on a loaded
    // machine (a decision for an ended stage is dropped, not dispatched: at 100 ms a CI run had
    // none to fail).
    stageTimeoutMs: 1_000,
    faults: { refuseActCalls: Number.MAX_SAFE_INTEGER },
    log: silentLogger,
  });
  const port = await sandbox.start();
  const system = new ActorSystem({
    config: testConfig({
      logging: { level: 'warn', dir },
      runtime: {
        placement: {
          io: ['receiver', 'dispatcher'],
          hot: ['adapter'],
          control: ['episodes'],
          sinks: ['db-writer', 'learner'],
        },
      },
      sandboxes: sandboxesAt([sandbox], [port]),
      dispatch: { retryDelaysMs },
      models: { dir: join(dir, 'no-models') },
    }),
    modules: {
      ...ACTOR_MODULES,
      'db-writer': fixtureActor('sink'),
      learner: fixtureActor('sink'),
    },
  });
  await system.start();
  return { sandbox, system };
}

test('a sandbox refusing every action: each batch is retried and counted as failed, and the failures are logged once, not per attempt', async (t) => {
  const dir = tempDir('warden-logs-refused-');
  const { sandbox, system } = await refusingRun(dir, [1, 1, 1]);
  let dispatcher: Record<string, number> = {};
  let episodes: Record<string, number> = {};
  try {
    t.true(await until(async () => sandbox.done, 30_000), 'the sandbox ended its stages itself');
    t.true(
      await until(async () => {
        const actors = (await system.stats()).threads.flatMap((x) => x.actors);
        const of = (name: string) => actors.find((a) => a.actor === name)?.custom ?? {};
        dispatcher = of('dispatcher');
        episodes = of('episodes');
        return (
          dispatcher.inFlight === 0 &&
          (dispatcher.failed ?? 0) > 0 &&
          episodes.failedActions === dispatcher.failed
        );
      }),
      'every failed action reached the episodes actor (one message per failed batch)',
    );
  } finally {
    await system.stop();
    await sandbox.stop();
  }
  const { lines } = readLogs(dir);
  const attempts = lines.filter((l) => l.msg === 'Act failed');
  const failed = lines.filter((l) => l.msg === 'actions failed after every retry');
  t.log(
    `${dispatcher.retries} retries, ${dispatcher.failed} actions failed; ${attempts.length} + ${failed.length} lines`,
  );
  t.true(dispatcher.retries! >= 3, 'each failed batch was retried three times');
  t.true(attempts.length >= 1 && attempts.length <= 2, 'Act failed: once, then every 10 s');
  t.true(failed.length >= 1 && failed.length <= 2);
  t.like(attempts[0], { sandbox: 'refusing', failedAttempts: 1 });
  t.like(failed[0], { sandbox: 'refusing', attempts: 4, batches: 1 });
});

test('at stop, a batch waiting for its retry is reported failed at once, before the episodes actor stops (no dead letter)', async (t) => {
  const dir = tempDir('warden-logs-refused-stop-');
  // The retry would come a minute later: only the stop can end it.
  const { sandbox, system } = await refusingRun(dir, [60_000]);
  try {
    t.true(
      await until(async () => ((await actorStats(system)).dispatcher?.retries ?? 0) > 0, 30_000),
      'a refused batch waits for its retry',
    );
  } finally {
    await system.stop();
    await sandbox.stop();
  }
  const { lines } = readLogs(dir);
  const failed = lines.filter((l) => l.msg === 'actions failed after every retry');
  t.true(failed.length >= 1, 'the waiting batch was reported failed');
  t.regex(String(failed[0]?.lastError), /^not retried, Warden stopping: /);
  t.like(failed[0], { sandbox: 'refusing', attempts: 1 });
  t.deepEqual(
    lines.filter((l) => l.msg === 'message not delivered'),
    [],
    'the report reached the episodes actor: it stops after the dispatcher',
  );
});
