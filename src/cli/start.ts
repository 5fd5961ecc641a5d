// `warden start`: the main job on embedded defaults. Loads configuration (and watches it), opens
// the database (embedded PostgreSQL unless DATABASE_URL), serves pattern queries on loopback,
// sizes the shared replay storage, starts the actor system with the configured placement, prints
// a status line, and shuts everything down cleanly on Ctrl-C, SIGTERM or after --duration seconds.

import * as grpc from '@grpc/grpc-js';
import type { DegradationAlert } from '../actors/episodes/degradation.ts';
import { hostIdOf } from '../cluster/host.ts';
import { fetchModel, latestPublished, publishModel, reportServing } from '../cluster/models.ts';
import { acquireLeadership, type Leadership, placementFor } from '../cluster/roles.ts';
import { loadConfig } from '../config/load.ts';
import type { WardenConfig } from '../config/schema.ts';
import { strictWarnings } from '../config/validate.ts';
import { ConfigWatcher } from '../config/watch.ts';
import { splitTraces } from '../data/split.ts';
import { openDatabase } from '../db/connect.ts';
import type { ModelActivated, ModelPublished } from '../messages/model.ts';
import { seedStarterModel } from '../models/starter.ts';
import { listVersions, setLatest } from '../models/store.ts';
import { ConfigError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import {
  closeLogOutput,
  componentLogger,
  configureLogOutput,
  routeGrpcLogs,
} from '../runtime/logger.ts';
import { ReplayStorage } from '../runtime/shared/replay-storage.ts';
import { ActorSystem } from '../runtime/system.ts';
import { exporterFromEnv } from '../runtime/tracing.ts';
import { endpointOf } from '../sandbox/grpc.ts';
import { replayOrder, startReferencePair } from '../sandbox/reference-pair.ts';
import type { ReferenceSandbox } from '../sandbox/reference-sandbox.ts';
import { FieldCipher, KEYS_ENV } from '../security/field-crypto.ts';
import { channelCredentials } from '../security/tls.ts';
import { AlertWebhook } from '../services/alert-webhook.ts';
import { deniedCalls, startMetricsServer } from '../services/metrics.ts';
import { readinessProbe } from '../services/readiness.ts';
import { type RunningServices, startServices } from '../services/server.ts';
import { systemAdmin } from '../services/system-admin.ts';

export interface StartOptions {
  readonly duration?: number;
  readonly configDir?: string;
  /** Run two reference sandboxes replaying the bundled real telemetry (the default of `start`). */
  readonly demo?: boolean;
  /** Events per second per demo sandbox (default: as fast as possible). */
  readonly rate?: number;
  /** Demo sandboxes replay with the recorded timing, this many times faster. */
  readonly realTime?: number;
  /**
   * With the demo on a single host: a models directory without any version starts from the
   * bundled starter model (models/starter.ts); false starts from the rule table. Default true.
   */
  readonly starter?: boolean;
  /** Sandboxes from the command line (`--sandbox name=host:port`), before the configured ones. */
  readonly sandboxes?: readonly { readonly name: string; readonly address: string }[];
}

async function startDemoSandboxes(
  rate: number | undefined,
  realTime: number | undefined,
  trainingSplitOnly: boolean,
  log: Logger,
): Promise<readonly ReferenceSandbox[]> {
  // Stage 1 in the positive sandbox, stage 2 in the negative one; 16 files at a time. Only the
  // training split when the learner judges its candidates on the test split of the same data:
  // outcomes report ground truth, so streaming the held-out episodes would teach the learner the
  // very set it is judged on.
  const all = await replayOrder();
  const pair = await startReferencePair({
    traces: trainingSplitOnly ? splitTraces(all, 'train') : all,
    names: ['sandbox-positive', 'sandbox-negative'],
    concurrency: 16,
    ...(rate ? { eventsPerSecond: rate } : {}),
    ...(realTime ? { realTime: { speed: realTime } } : {}),
    log,
  });
  return pair.sandboxes;
}

export async function start(
  options: StartOptions,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  try {
    return await runSystem(options, out);
  } finally {
    closeLogOutput(); // flushes a log file and ends its rotation timer
  }
}

/**
 * The progress line's note on the database, only when something is wrong: rows waiting in the
 * local journal (the database away or behind) and rows lost. With the disk full, the line showed
 * nothing amiss while rows were being refused.
 */
export function databaseTrouble(writer: Record<string, number> | undefined): string {
  const queued = writer?.journalBytes ?? 0;
  const refused = writer?.refused ?? 0;
  if (queued === 0 && refused === 0) return '';
  const parts = [
    ...(queued > 0 ? [`${(queued / 2 ** 20).toFixed(1)} MiB queued in the journal`] : []),
    ...(refused > 0 ? [`${refused} rows refused`] : []),
  ];
  return `  database: ${parts.join(', ')}`;
}

async function runSystem(options: StartOptions, out: NodeJS.WritableStream): Promise<number> {
  // Ctrl-C or SIGTERM while starting: remembered, and the system stops cleanly as soon as it is
  // up (a standby learner stops waiting at once) — never an abrupt exit half-way.
  const startup = new AbortController();
  let stopRequested: string | undefined;
  const earlySignal = (signal: string) => () => {
    stopRequested ??= signal;
    startup.abort();
  };
  const earlyInt = earlySignal('SIGINT');
  const earlyTerm = earlySignal('SIGTERM');
  process.once('SIGINT', earlyInt);
  process.once('SIGTERM', earlyTerm);
  try {
    return await runStarted(options, out, startup.signal, () => stopRequested);
  } finally {
    process.off('SIGINT', earlyInt);
    process.off('SIGTERM', earlyTerm);
  }
}

async function runStarted(
  options: StartOptions,
  out: NodeJS.WritableStream,
  startupSignal: AbortSignal,
  stopRequested: () => string | undefined,
): Promise<number> {
  const log = componentLogger('cli');
  const loaded = loadConfig(options.configDir ? { dir: options.configDir } : {});
  log.level = loaded.config.logging.level;
  for (const w of loaded.warnings) log.warn({ field: w.field }, `config: ${w.message}`);
  const strict = strictWarnings(loaded.warnings);
  if (strict.length > 0) {
    throw new ConfigError(
      `security and sandbox settings must be valid, they never fall back: ${strict.map((w) => `${w.field}: ${w.message}`).join('; ')}`,
    );
  }
  const { config } = loaded;
  await configureLogOutput(config.logging, 'main');
  // Checked before anything starts: encrypted fields need their key (WARDEN_ENCRYPTION_KEYS).
  const cipher = new FieldCipher(
    config.security.encryption.fields,
    process.env[KEYS_ENV],
    config.security.encryption.keyId,
  );
  const say = (line: string) => out.write(`${line}\n`);
  routeGrpcLogs(grpc);
  say(`warden: environment ${config.environment}, configuration from ${loaded.sources.join(', ')}`);

  // Every configured sandbox channel is checked now (TLS files readable, no plaintext off
  // loopback): a receiver must not discover it in a crash loop.
  const configured: WardenConfig['sandboxes'] = [
    ...(options.sandboxes ?? []).map((s) => ({ ...s, tls: null })),
    ...config.sandboxes,
  ];
  for (const s of configured)
    channelCredentials(s.address, s.tls ?? null, `sandbox ${s.name}`, config.security);
  const role = config.cluster.role;
  const hostId = hostIdOf(config);
  if (role !== 'all' && !config.database.url) {
    throw new ConfigError(
      `cluster.role ${role} shares experiences and models through one PostgreSQL: set DATABASE_URL (the embedded server is local to one host)`,
    );
  }
  // A learner host runs no sandboxes: it learns from every inference host's experiences.
  const demo =
    options.demo && role !== 'learner'
      ? await startDemoSandboxes(
          options.rate,
          options.realTime,
          config.learning.heldOutData === null,
          log,
        )
      : [];
  for (const s of demo) {
    say(
      `warden: reference sandbox ${s.name} on 127.0.0.1:${s.port} (${s.role === 'positive' ? `stage 1, replaying the bundled Oliveira 2019 traces${config.learning.heldOutData === null ? ' of the training split; the test split judges every new model' : ''}` : 'stage 2, the files the positive sandbox passes on'})`,
    );
  }
  // The reference sandboxes and --sandbox flags are this run's; the configuration's apply live.
  const fixed: WardenConfig['sandboxes'] =
    role === 'learner'
      ? []
      : [
          ...demo.map((s) => ({ name: s.name, address: `127.0.0.1:${s.port}`, tls: null })),
          ...(options.sandboxes ?? []).map((s) => ({ ...s, tls: null })),
        ];
  const sandboxes = role === 'learner' ? [] : [...fixed, ...config.sandboxes];
  const names = sandboxes.map((s) => s.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    await Promise.all(demo.map((s) => s.stop()));
    throw new ConfigError(`two sandboxes are named "${twice}": each receiver needs its own name`);
  }
  if (sandboxes.length === 0 && role !== 'learner')
    say(
      'warden: no sandboxes to connect to (configure "sandboxes", or give --sandbox name=host:port); the services run, nothing is decided',
    );

  // The database first: actors that write to it get its URL in their configuration.
  const db = await openDatabase(config, log).catch(async (error) => {
    await Promise.all(demo.map((s) => s.stop()));
    throw error;
  });
  say(
    db.embedded
      ? `warden: embedded PostgreSQL on 127.0.0.1:${db.embedded.port} (data in ${config.database.dataDir})`
      : 'warden: PostgreSQL from DATABASE_URL',
  );
  // What the actors run with: the sandboxes (reference ones included), the database's URL, and
  // the placement of this host's role.
  let running: WardenConfig['sandboxes'] = sandboxes;
  const withDb = <C extends typeof config>(c: C): C => ({
    ...c,
    // The sandboxes connected now (sandboxesFor), each with its settings as the configuration
    // has them (a reference sandbox's maxEventsPerSecond too).
    sandboxes: running.map((s) => {
      const now = c.sandboxes.find((x) => x.name === s.name);
      return now ? { ...s, maxEventsPerSecond: now.maxEventsPerSecond } : s;
    }),
    database: { ...c.database, url: db.url },
    runtime: {
      ...c.runtime,
      placement: placementFor(c),
      // The demo's reference sandboxes end with the run: nothing of theirs can go on after it.
      resumeDir: demo.length > 0 ? null : c.runtime.resumeDir,
    },
  });
  /**
   * The sandboxes a changed configuration asks for (`sandboxes` applies live), each new or changed
   * channel checked first as at start (TLS files readable, no plaintext off loopback): one that
   * fails is logged and not applied (a changed one keeps its channel as it was), rather than
   * reaching a receiver that would crash on it. A name taken by a reference sandbox or a
   * --sandbox flag stays theirs.
   */
  const shadowed = new Set<string>(); // told once each
  const sandboxesFor = (c: WardenConfig): WardenConfig['sandboxes'] => {
    if (role === 'learner') return [];
    const now = new Map(running.map((s) => [s.name, s]));
    const next = [...fixed];
    for (const s of c.sandboxes) {
      if (fixed.some((f) => f.name === s.name)) {
        if (!shadowed.has(s.name))
          log.warn(
            { sandbox: s.name },
            'config: a sandbox of this run already has this name; entry ignored',
          );
        shadowed.add(s.name);
        continue;
      }
      const before = now.get(s.name);
      if (before && endpointOf(before) === endpointOf(s)) {
        next.push(s);
        continue;
      }
      try {
        channelCredentials(s.address, s.tls ?? null, `sandbox ${s.name}`, c.security);
        next.push(s);
      } catch (error) {
        log.error(
          { err: error, sandbox: s.name, alert: 'warden_sandbox_refused' },
          before
            ? 'config: sandbox address or TLS not applied; its stream stays where it was'
            : 'config: sandbox not added',
        );
        if (before) next.push(before);
      }
    }
    return next;
  };
  if (role !== 'all') say(`warden: ${role} host ${hostId}`);

  // One learner at a time: a standby waits for the leader's session to end, then continues
  // from the latest published model and the shared cursor.
  let leadership: Leadership | undefined;
  let onLeadershipLost: (error: Error) => void = () => undefined;
  if (role === 'learner') {
    leadership = await acquireLeadership(
      db.url,
      log,
      config.cluster.standbyPollMs,
      () => say('warden: standby learner — another learner leads; waiting to take over'),
      (error) => onLeadershipLost(error),
      startupSignal,
    ).catch(async (error) => {
      await db.close();
      throw error;
    });
    if (!leadership) {
      say('warden: stopped while standing by');
      await db.close();
      return 0;
    }
    let latest = await latestPublished(db.pool);
    if (latest) {
      try {
        if (!listVersions(config.models.dir).includes(latest))
          await fetchModel(db.pool, config.models.dir, latest);
        setLatest(config.models.dir, latest);
      } catch (error) {
        log.error(
          { err: error, version: latest },
          'latest published model unusable; learning from scratch',
        );
        latest = undefined;
      }
    }
    say(`warden: learner leader; continuing from ${latest ?? 'a new network'}`);
  }

  // The demo on one host: an empty models directory starts from the bundled model, trained on
  // the same data the demo sandboxes replay. Not where models must be signed: it is unsigned.
  if (
    options.demo &&
    role === 'all' &&
    options.starter !== false &&
    !config.models.requireSignature
  ) {
    try {
      const seeded = seedStarterModel(config.models.dir, config.telemetry.stateDim);
      if (seeded)
        say(
          `warden: no model in ${config.models.dir} yet: starting from the bundled ${seeded} (warden train on the bundled data; see data/starter-model/README.md; --no-starter starts from the rule table)`,
        );
    } catch (error) {
      log.warn(
        { err: error },
        'the bundled starter model could not be copied; the rule table answers until a model is learned',
      );
    }
  }
  const replay = ReplayStorage.create({
    capacity: config.replay.capacity,
    dim: config.telemetry.stateDim,
  });
  say(
    `warden: replay storage ${config.replay.capacity.toLocaleString('en')} transitions × ${config.telemetry.stateDim} features (${(replay.buffer.byteLength / 2 ** 20).toFixed(0)} MiB shared)`,
  );
  // Traces only when the standard OTEL_* variables ask for OTLP export (off by default).
  const traceExporter = await exporterFromEnv();
  if (traceExporter)
    say(
      `warden: traces exported over OTLP to ${process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318'} (one trace per episode)`,
    );
  const system = new ActorSystem({
    config: withDb(config),
    shared: { replay: replay.buffer },
    ...(traceExporter ? { traceExporter } : {}),
  });
  if (system.skipped.length > 0)
    say(`warden: not built yet, left out: ${system.skipped.join(', ')}`);

  let modelVersion = 'rules'; // the version the adapter's pool serves (model-activated)
  let metricsServer: { stop(): Promise<void> } | undefined;
  let last = { at: Date.now(), decisions: 0, events: 0 };
  const runStartedAt = last.at;
  type Progress = Record<string, Record<string, number>>;
  /**
   * Every actor's stats, and when they were asked for: the receivers and the episodes actor
   * answer at once, while a thread busy exporting a model can hold the whole read for seconds, so
   * the rates are taken between the times of asking (at the time of the answer, a read held for
   * 6 s showed 147,521 events/s beside 35k before and after it).
   */
  /** stale: actors whose thread was too busy to answer, with the age of the figures shown. */
  type Reading = { at: number; actors: Progress; stale: string[] };
  const progress = async (): Promise<Reading | undefined> => {
    const at = Date.now();
    const stats = await system.stats().catch(() => undefined);
    if (!stats) return undefined;
    const actors = stats.threads.flatMap((t) => t.actors);
    return {
      at,
      actors: Object.fromEntries(actors.map((a) => [a.actor, a.custom])),
      stale: actors.flatMap((a) =>
        a.staleMs === undefined ? [] : [`${a.actor} ${(a.staleMs / 1000).toFixed(0)} s`],
      ),
    };
  };
  const receiverEvents = new Map<string, number>();
  let retiredEvents = 0;
  const line = ({ at: now, actors: a, stale }: Reading) => {
    const e = a.episodes ?? {};
    const decisions = e.decisions ?? 0;
    // Events received can outnumber decisions: a sandbox streaming faster than real time has sent
    // more of a stage by the time its verdict arrives, and a decided stage takes no more decisions.
    // A sandbox removed while Warden runs keeps its count here (its receiver is gone), and a
    // receiver started again (the sandbox added back, a crash) adds to what it had counted.
    for (const [actor, s] of Object.entries(a)) {
      if (!actor.startsWith('receiver:')) continue;
      const n = s.events ?? 0;
      const before = receiverEvents.get(actor) ?? 0;
      if (n < before) retiredEvents += before;
      receiverEvents.set(actor, n);
    }
    let events = retiredEvents;
    for (const n of receiverEvents.values()) events += n;
    const perSecond = (n: number, before: number) =>
      (((n - before) * 1000) / Math.max(1, now - last.at)).toFixed(0);
    const rates = `events ${events} (${perSecond(events, last.events)}/s)  decisions ${decisions} (${perSecond(decisions, last.decisions)}/s)`;
    last = { at: now, decisions, events };
    const tpr = (e.stage1_tp ?? 0) / Math.max(1, (e.stage1_tp ?? 0) + (e.stage1_fn ?? 0));
    const fpr = (e.stage1_fp ?? 0) / Math.max(1, (e.stage1_fp ?? 0) + (e.stage1_tn ?? 0));
    return `episodes ${e.completed ?? 0} (+${e.partial ?? 0} partial)  ${rates}  stage-1 TPR ${(tpr * 100).toFixed(1)}% FPR ${(fpr * 100).toFixed(1)}%  decision p99 ${(e.latencyP99Ms ?? 0).toFixed(1)} ms  model ${modelVersion}  replay ${replay.size}  learner updates ${a.learner?.updates ?? 0}${a.learner?.exported || a.learner?.reverted ? ` (candidates exported ${a.learner.exported ?? 0}, refused ${a.learner.reverted ?? 0})` : ''}  patterns ${e.patterns ?? 0}${databaseTrouble(a['db-writer'])}${role === 'learner' ? `  experiences read ${a['experience-feed']?.consumed ?? 0}` : ''}${stale.length > 0 ? `  (too busy to answer, figures as they were: ${stale.join(', ')} ago)` : ''}`;
  };
  let failed = false;
  let status: NodeJS.Timeout | undefined;
  let stopping = false;
  // /ready, warden_ready and warden status ask the same probe (one database round trip at a time).
  const readiness = readinessProbe({
    pool: db.pool,
    stopping: () => stopping,
    modelVersion: () => modelVersion,
    log,
  });
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const configDir = options.configDir ?? new URL('../../config/', import.meta.url).pathname;
  const watcher = new ConfigWatcher(loaded, { dir: configDir }, log);
  const webhook = new AlertWebhook(() => watcher.current.alerts.webhook, log);
  let services: RunningServices | undefined;

  function stop(reason: string): void {
    if (stopping) return;
    stopping = true;
    say(`warden: stopping (${reason})`);
    clearInterval(status);
    watcher.close();
    void progress()
      .then((final) => {
        // Rates over the whole run, not since the last progress line.
        last = { at: runStartedAt, decisions: 0, events: 0 };
        if (final) say(`warden: summary — ${line(final)}`);
      })
      .then(() => metricsServer?.stop())
      .then(() => system.stop())
      .then(() => Promise.all(demo.map((s) => s.stop())))
      .then(() => services?.stop())
      .then(() => leadership?.release())
      .then(() => db.close())
      // An alert raised just before the stop still gets its retries (1 + 2 + 4 s, and timeouts).
      .then(() => webhook.drain(15_000))
      .then(resolveDone);
  }
  // Registry stand-in: a model the learner published is hot-loaded by the adapter's pool.
  system.on('message', ({ message }) => {
    if (message.type === 'model-published') {
      const published = message as ModelPublished;
      // One host: straight to the inference pool. A learner host: to the fleet's registry.
      if (role === 'all') system.send('adapter', published);
      else if (role === 'learner')
        publishModel(db.pool, config.models.dir, published.metadata.version)
          .then(() => say(`warden: published ${published.metadata.version} to the fleet`))
          .catch((error) => log.error({ err: error }, 'publishing a model failed'));
    }
    if (message.type === 'model-activated') {
      const { version } = message as ModelActivated;
      modelVersion = version;
      if (role === 'inference' && listVersions(config.models.dir).includes(version))
        setLatest(config.models.dir, version);
      reportServing(db.pool, hostId, role, version).catch((error) =>
        log.warn({ err: error }, 'could not report the model in service'),
      );
    }
    if (message.type === 'model-degraded') {
      const alert = message as DegradationAlert;
      say(
        `warden: ALERT model ${alert.version} degraded (accuracy ${(alert.accuracy * 100).toFixed(1)}% vs ${(alert.previousAccuracy * 100).toFixed(1)}% for ${alert.previousVersion})`,
      );
      void webhook.send(alert);
    }
  });
  onLeadershipLost = (error) => {
    failed = true;
    log.error({ err: error }, 'learner leadership lost; stopping so a standby can take over');
    stop('learner leadership lost');
  };
  system.on('actor-failed', ({ actor, error }) => {
    failed = true;
    log.fatal({ err: error, actor }, 'actor gave up; shutting down');
    stop('actor failure');
  });

  try {
    await system.start();
    services = await startServices({
      db: db.pool,
      log,
      config,
      onDenied: (service, method, reason) => deniedCalls.inc({ service, method, reason }),
      cipher,
      admin:
        role === 'learner'
          ? undefined
          : systemAdmin({
              system,
              config: () => withDb(watcher.current),
              fileConfig: () => watcher.current,
              configFiles: { dir: configDir },
              modelVersion: () => modelVersion,
              counters: async () => {
                const e = (await progress())?.actors.episodes ?? {};
                return {
                  decisions: e.decisions ?? 0,
                  episodesCompleted: e.completed ?? 0,
                  episodesPartial: e.partial ?? 0,
                };
              },
              startedAt: Date.now(),
              readiness,
            }),
    });
  } catch (error) {
    await system.stop();
    await db.close();
    await Promise.all(demo.map((s) => s.stop()));
    throw error;
  }
  say(
    `warden: services on ${services.host}:${services.port} (${services.tls ? 'TLS' : 'plaintext, loopback'}, ${services.authRequired ? 'authenticated: WARDEN_AUTH_TOKENS or client certificates' : 'unauthenticated: security.auth.required is off'}): warden.patterns.v1.PatternQuery, warden.admin.v1.Admin`,
  );
  const metrics = await startMetricsServer(system, config.metrics.port, config.metrics.host, log, {
    modelVersion: () => modelVersion,
    config: () => watcher.status,
    readiness,
  }).catch((error) => {
    log.error({ err: error }, 'metrics endpoint could not start; running without it');
    return undefined;
  });
  metricsServer = metrics;
  if (metrics)
    say(`warden: Prometheus metrics on http://${config.metrics.host}:${metrics.port}/metrics`);
  const threads = Object.entries(system.placement);
  say(
    threads.length === 0
      ? 'warden: runtime up with no actors placed'
      : `warden: runtime up — ${threads.map(([t, a]) => `${t}[${a.join(', ')}]`).join(' ')}`,
  );

  watcher.start();
  watcher.on('change', (change) => {
    running = sandboxesFor(change.config);
    system
      .configure(withDb(change.config))
      .catch((error) => log.error({ err: error }, 'config: applying the change failed'));
  });
  watcher.on('error', () => undefined); // logged by the watcher; the running configuration stays

  const onSignal = (signal: string) => () => stop(signal);
  process.once('SIGINT', onSignal('SIGINT'));
  process.once('SIGTERM', onSignal('SIGTERM'));
  const early = stopRequested();
  if (early) stop(`${early} during start`);
  const timer =
    options.duration === undefined
      ? undefined
      : setTimeout(() => stop(`--duration ${options.duration}`), options.duration * 1000);

  // One progress read at a time: a read that waits on a busy thread (a model export) and the next
  // one would otherwise resolve together, and the rate over the milliseconds between them showed
  // 122,445,000 events/s.
  let reading = false;
  status = setInterval(async () => {
    if (reading) return;
    reading = true;
    try {
      const a = await progress();
      if (a) say(`warden: ${line(a)}`);
    } finally {
      reading = false;
    }
  }, 2_000);
  status.unref();

  await done;
  clearInterval(status);
  clearTimeout(timer);
  say(`warden: stopped cleanly; replay held ${replay.size} transitions`);
  return failed ? 1 : 0;
}
