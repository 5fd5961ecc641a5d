// `warden start`: the main job on embedded defaults. Loads configuration (and watches it), sizes
// the shared replay storage, starts the actor system with the configured placement, prints a
// status line, and shuts down cleanly on Ctrl-C, SIGTERM or after --duration seconds.

import { loadConfig } from '../config/load.ts';
import { ConfigWatcher } from '../config/watch.ts';
import { componentLogger } from '../runtime/logger.ts';
import { ReplayStorage } from '../runtime/shared/replay-storage.ts';
import { ActorSystem } from '../runtime/system.ts';

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

  const replay = ReplayStorage.create({
    capacity: config.replay.capacity,
    dim: config.telemetry.stateDim,
  });
  const system = new ActorSystem({ config, shared: { replay: replay.buffer } });
  const say = (line: string) => out.write(`${line}\n`);
  say(`warden: environment ${config.environment}, configuration from ${loaded.sources.join(', ')}`);
  say(
    `warden: replay storage ${config.replay.capacity.toLocaleString('en')} transitions × ${config.telemetry.stateDim} features (${(replay.buffer.byteLength / 2 ** 20).toFixed(0)} MiB shared)`,
  );
  if (system.skipped.length > 0)
    say(`warden: not built yet, left out: ${system.skipped.join(', ')}`);

  let failed = false;
  system.on('actor-failed', ({ actor, error }) => {
    failed = true;
    log.fatal({ err: error, actor }, 'actor gave up; shutting down');
    stop('actor failure');
  });

  await system.start();
  const threads = Object.entries(system.placement);
  say(
    threads.length === 0
      ? 'warden: runtime up with no actors placed'
      : `warden: runtime up — ${threads.map(([t, a]) => `${t}[${a.join(', ')}]`).join(' ')}`,
  );

  const watcher = new ConfigWatcher(
    loaded,
    { dir: options.configDir ?? new URL('../../config/', import.meta.url).pathname },
    log,
  ).start();
  watcher.on('change', (change) => void system.configure(change.config));
  watcher.on('error', () => undefined); // logged by the watcher; the running configuration stays

  let stopping = false;
  const { promise: done, resolve: resolveDone } = Promise.withResolvers<void>();
  function stop(reason: string): void {
    if (stopping) return;
    stopping = true;
    say(`warden: stopping (${reason})`);
    watcher.close();
    void system.stop().then(resolveDone);
  }
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
  const stats = replay.size;
  say(`warden: stopped cleanly; replay held ${stats} transitions`);
  return failed ? 1 : 0;
}
