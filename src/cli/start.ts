// `warden start`: the main job on embedded defaults. Loads configuration (and watches it), opens
// the database (embedded PostgreSQL unless DATABASE_URL), serves pattern queries on loopback,
// sizes the shared replay storage, starts the actor system with the configured placement, prints
// a status line, and shuts everything down cleanly on Ctrl-C, SIGTERM or after --duration seconds.

import { loadConfig } from '../config/load.ts';
import { ConfigWatcher } from '../config/watch.ts';
import { openDatabase } from '../db/connect.ts';
import { componentLogger } from '../runtime/logger.ts';
import { ReplayStorage } from '../runtime/shared/replay-storage.ts';
import { ActorSystem } from '../runtime/system.ts';
import { startPatternQueryServer } from '../services/pattern-query.ts';

export interface StartOptions {
  readonly duration?: number;
  readonly configDir?: string;
}

export async function start(
  options: StartOptions,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const log = componentLogger('cli');
  const loaded = loadConfig(options.configDir ? { dir: options.configDir } : {});
  log.level = loaded.config.logging.level;
  for (const w of loaded.warnings) log.warn({ field: w.field }, `config: ${w.message}`);
  const { config } = loaded;
  const say = (line: string) => out.write(`${line}\n`);
  say(`warden: environment ${config.environment}, configuration from ${loaded.sources.join(', ')}`);

  // The database first: actors that write to it get its URL in their configuration.
  const db = await openDatabase(config, log);
  say(
    db.embedded
      ? `warden: embedded PostgreSQL on 127.0.0.1:${db.embedded.port} (data in ${config.database.dataDir})`
      : 'warden: PostgreSQL from DATABASE_URL',
  );
  const withDb = <C extends typeof config>(c: C): C => ({
    ...c,
    database: { ...c.database, url: db.url },
  });
  const query = await startPatternQueryServer(db.pool, log, config.database.queryPort).catch(
    async (error) => {
      await db.close();
      throw error;
    },
  );
  say(`warden: pattern queries (gRPC warden.patterns.v1.PatternQuery) on 127.0.0.1:${query.port}`);

  const replay = ReplayStorage.create({
    capacity: config.replay.capacity,
    dim: config.telemetry.stateDim,
  });
  say(
    `warden: replay storage ${config.replay.capacity.toLocaleString('en')} transitions × ${config.telemetry.stateDim} features (${(replay.buffer.byteLength / 2 ** 20).toFixed(0)} MiB shared)`,
  );
  const system = new ActorSystem({ config: withDb(config), shared: { replay: replay.buffer } });
  if (system.skipped.length > 0)
    say(`warden: not built yet, left out: ${system.skipped.join(', ')}`);

  let failed = false;
  let stopping = false;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const watcher = new ConfigWatcher(
    loaded,
    { dir: options.configDir ?? new URL('../../config/', import.meta.url).pathname },
    log,
  );
  function stop(reason: string): void {
    if (stopping) return;
    stopping = true;
    say(`warden: stopping (${reason})`);
    watcher.close();
    void system
      .stop()
      .then(() => query.stop())
      .then(() => db.close())
      .then(resolveDone);
  }
  system.on('actor-failed', ({ actor, error }) => {
    failed = true;
    log.fatal({ err: error, actor }, 'actor gave up; shutting down');
    stop('actor failure');
  });

  try {
    await system.start();
  } catch (error) {
    await query.stop();
    await db.close();
    throw error;
  }
  const threads = Object.entries(system.placement);
  say(
    threads.length === 0
      ? 'warden: runtime up with no actors placed'
      : `warden: runtime up — ${threads.map(([t, a]) => `${t}[${a.join(', ')}]`).join(' ')}`,
  );

  watcher.start();
  watcher.on('change', (change) => void system.configure(withDb(change.config)));
  watcher.on('error', () => undefined); // logged by the watcher; the running configuration stays

  const onSignal = (signal: string) => () => stop(signal);
  process.once('SIGINT', onSignal('SIGINT'));
  process.once('SIGTERM', onSignal('SIGTERM'));
  const timer =
    options.duration === undefined
      ? undefined
      : setTimeout(() => stop(`--duration ${options.duration}`), options.duration * 1000);

  const status = setInterval(async () => {
    const stats = await system.stats().catch(() => undefined);
    if (!stats) return;
    const handled = stats.threads.flatMap((t) => t.actors).reduce((n, a) => n + a.handled, 0);
    say(
      `warden: ${handled} messages handled, ${stats.deadLetters} dead letters, ${stats.workerRestarts} worker restarts, replay ${replay.size}`,
    );
  }, 5_000);
  status.unref();

  await done;
  clearInterval(status);
  clearTimeout(timer);
  say(`warden: stopped cleanly; replay held ${replay.size} transitions`);
  return failed ? 1 : 0;
}
