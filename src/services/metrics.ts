// Prometheus metrics over HTTP (`/metrics`; `/health`, and `/ready` when given a probe): gauges
// collected on each scrape from every actor's stats, aggregated across worker threads by the actor
// system. Names are namespaced `warden_…`; process metrics come from prom-client. Binds to loopback
// unless configured otherwise.

import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ConfigStatus } from '../config/watch.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ActorSystem } from '../runtime/system.ts';
import { certificateExpiry, configuredCertificates } from '../security/tls.ts';
import type { Readiness } from './readiness.ts';

type Stats = Awaited<ReturnType<ActorSystem['stats']>>;

/** Actor stats with a dedicated metric: [actor, stat, metric, help, scale]. */
const NAMED: readonly (readonly [string, string, string, string, number])[] = [
  [
    'episodes',
    'decisions',
    'warden_decisions',
    'Decisions made (every telemetry event of an undecided stage).',
    1,
  ],
  ['episodes', 'completed', 'warden_episodes_completed', 'Episodes closed with both stages.', 1],
  [
    'episodes',
    'partial',
    'warden_episodes_partial',
    'Episodes stored as partial (stage failed, silence, shutdown).',
    1,
  ],
  [
    'episodes',
    'evicted',
    'warden_episodes_evicted',
    'Episodes stored as partial because more than dispatch.maxOpenEpisodes were open (a sandbox opening episodes it never ends).',
    1,
  ],
  [
    'episodes',
    'transitions',
    'warden_replay_transitions_added',
    'Transitions appended to the replay storage.',
    1,
  ],
  [
    'episodes',
    'hindsight',
    'warden_replay_hindsight_added',
    'Hindsight verdicts appended to the replay beside the played transitions (learning.hindsightStates).',
    1,
  ],
  [
    'episodes',
    'patterns',
    'warden_patterns_learned',
    'Learned attack patterns sent to the database.',
    1,
  ],
  [
    'episodes',
    'latencyP99Ms',
    'warden_decision_latency_p99_seconds',
    'Arrival of a telemetry batch to its decision, p99 of recent decisions.',
    1e-3,
  ],
  [
    'episodes',
    'latencyP50Ms',
    'warden_decision_latency_p50_seconds',
    'Arrival of a telemetry batch to its decision, p50 of recent decisions.',
    1e-3,
  ],
  ['learner', 'loss', 'warden_learner_loss', 'Training loss of the latest update.', 1],
  ['learner', 'epsilon', 'warden_learner_epsilon', 'Exploration rate of the schedule.', 1],
  [
    'learner',
    'averageReward',
    'warden_learner_average_reward',
    'Average episode reward over the last 100 episodes.',
    1,
  ],
  [
    'learner',
    'updatesPerSecond',
    'warden_learner_updates_per_second',
    'Network updates per second.',
    1,
  ],
  ['learner', 'updates', 'warden_learner_updates', 'Network updates so far.', 1],
  [
    'learner',
    'heldOutAccuracy',
    'warden_model_heldout_balanced_accuracy',
    'Balanced accuracy of the version in service (resumed or last exported) on the fixed held-out set (-1 before one).',
    1,
  ],
  [
    'learner',
    'heldOutAlerts',
    'warden_model_heldout_alerts',
    'Candidates whose held-out accuracy fell beyond alerts.maxAccuracyDrop below the version in service (forgetting).',
    1,
  ],
  [
    'learner',
    'reverted',
    'warden_learner_reverted',
    'Candidates not exported, worse on the held-out set than the best version served (learning.exportTolerance, learning.revertOnForgetting); learning went back to the weights in service.',
    1,
  ],
  [
    'learner',
    'learningRate',
    'warden_learner_learning_rate',
    'The learning rate now: learning.resumeLearningRate when continuing from a trained version, halved per refused candidate, doubled per exported one.',
    1,
  ],
  [
    'learner',
    'rehearsed',
    'warden_learner_rehearsed_transitions',
    'Transitions of recorded training episodes the learner added to the replay (learning.rehearsalShare).',
    1,
  ],
  [
    'db-writer',
    'journalBytes',
    'warden_db_journal_bytes',
    'Bytes waiting in the local journal for the database.',
    1,
  ],
  [
    'db-writer',
    'renamed',
    'warden_db_episodes_renamed',
    'Episodes stored as <id>#<start ms> because their id was already stored for another run (a sandbox reusing its episode ids, as after a restart that numbers them from 1 again).',
    1,
  ],
  [
    'db-writer',
    'lastWriteMs',
    'warden_db_write_latency_seconds',
    'Duration of the latest database batch write.',
    1e-3,
  ],
  [
    'episodes',
    'degradationAlerts',
    'warden_model_degradation_alerts',
    'Model versions alerted as degraded against their predecessor.',
    1,
  ],
  ['dispatcher', 'failed', 'warden_actions_failed', 'Actions that failed after every retry.', 1],
  [
    'dispatcher',
    'toRemoved',
    'warden_actions_to_removed_sandboxes',
    'Actions decided for a sandbox after it was removed from the configuration (its last events): not delivered, and not counted as failed.',
    1,
  ],
  [
    'dispatcher',
    'retries',
    'warden_action_retries',
    'Batches of actions sent again after a failure.',
    1,
  ],
  [
    'adapter',
    'backlog',
    'warden_adapter_backlog',
    'Events waiting for the inference pool (fair queue).',
    1,
  ],
  [
    'adapter',
    'pending',
    'warden_inference_in_flight',
    'Requests in the inference rings awaiting an answer.',
    1,
  ],
  [
    'episodes',
    'replaySize',
    'warden_replay_size',
    'Transitions held in the shared replay storage.',
    1,
  ],
  [
    'episodes',
    'replayCapacity',
    'warden_replay_capacity',
    'Capacity of the shared replay storage.',
    1,
  ],
  [
    'adapter',
    'modelRefused',
    'warden_model_refused',
    'Model versions the inference pool refused to serve (checksum, signature, shape, damaged file, load failure): an older version, or the rule table, serves instead.',
    1,
  ],
  [
    'adapter',
    'poolRestarts',
    'warden_inference_worker_restarts',
    'Inference workers that died and were started again (their requests were decided again).',
    1,
  ],
  [
    'adapter',
    'overStageLimit',
    'warden_telemetry_over_stage_limit',
    'Events past telemetry.maxEventsPerStage, not decided.',
    1,
  ],
];

/** Calls refused by the services' authentication (counted in main, where the services run). */
export const deniedCalls = new Counter({
  name: 'warden_denied_calls_total',
  help: 'Service calls refused by authentication or authorisation, by reason.',
  labelNames: ['service', 'method', 'reason'],
  registers: [],
});

/** A registry over the system's stats; scrape() refreshes them once, then renders every metric. */
const ACTION_LABELS = [
  'continue',
  'raise_isolation',
  'terminate',
  'quarantine',
  'review',
  'release',
];

export interface MetricsSources {
  /** The model version the inference pool serves (main learns it from model-activated). */
  readonly modelVersion?: () => string;
  /** The configuration watcher's view: fields defaulted, waiting for a restart, failed reloads. */
  readonly config?: () => ConfigStatus;
  /** `/ready`: what the process needs to do its job, check by check (services/readiness.ts). */
  readonly readiness?: () => Promise<Readiness>;
}

export function metricsRegistry(
  system: ActorSystem,
  sources: MetricsSources = {},
): {
  registry: Registry;
  scrape(): Promise<string>;
} {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'warden_' });
  registry.registerMetric(deniedCalls);
  let snapshot: Stats | undefined;
  const refresh = async () => {
    snapshot = await system.stats().catch(() => snapshot);
  };
  const actors = () =>
    (snapshot?.threads ?? []).flatMap((t) => t.actors.map((a) => ({ ...a, thread: t.thread })));
  // prom-client collects every metric concurrently: the snapshot is refreshed once per scrape,
  // before collection, and every gauge reads it.
  const perActor = (
    name: string,
    help: string,
    pick: (a: ReturnType<typeof actors>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['actor', 'thread'],
      registers: [registry],
      collect() {
        this.reset();
        for (const a of actors()) this.set({ actor: a.actor, thread: a.thread }, pick(a));
      },
    });
  /** A gauge per sandbox from its receiver's stats. */
  const perSandbox = (
    name: string,
    help: string,
    pick: (receiver: Record<string, number>) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['sandbox'],
      registers: [registry],
      collect() {
        this.reset();
        for (const a of actors())
          if (a.actor.startsWith('receiver:'))
            this.set({ sandbox: a.actor.slice('receiver:'.length) }, pick(a.custom));
      },
    });
  perActor('warden_actor_handled_messages', 'Messages an actor handled.', (a) => a.handled);
  perActor(
    'warden_actor_restarts',
    'Restarts of an actor (its own or its thread’s).',
    (a) => a.restarts,
  );
  perActor('warden_actor_failed_messages', 'Messages whose handler threw.', (a) => a.failed);
  perActor(
    'warden_actor_mailbox_depth',
    'Messages waiting in an actor’s mailbox.',
    (a) => a.mailboxDepth,
  );
  perActor(
    'warden_actor_pending_messages',
    'Messages sent to an actor and not yet taken up: its mailbox and the channels to its thread. Receivers pause their sandboxes while the dispatcher, episodes actor or DB writer has half a mailbox pending.',
    (a) => a.pending ?? 0,
  );
  new Counter({
    name: 'warden_thread_busy_seconds_total',
    help: 'Event-loop busy time per thread since it (re)started; rate() is its utilisation.',
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      this.reset();
      if (snapshot) this.inc({ thread: 'main' }, snapshot.mainLoad.activeMs / 1000);
      for (const t of snapshot?.threads ?? [])
        if (t.load) this.inc({ thread: t.thread }, t.load.activeMs / 1000);
    },
  });
  new Counter({
    name: 'warden_thread_cpu_seconds_total',
    help: 'CPU time the kernel charged to each thread since it (re)started (Linux).',
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      this.reset();
      const main = snapshot?.mainLoad.cpuMs;
      if (main !== undefined) this.inc({ thread: 'main' }, main / 1000);
      for (const t of snapshot?.threads ?? [])
        if (t.load?.cpuMs !== undefined) this.inc({ thread: t.thread }, t.load.cpuMs / 1000);
    },
  });
  new Gauge({
    name: 'warden_dead_letters',
    help: 'Messages that could not be delivered (counted, never silent).',
    registers: [registry],
    collect() {
      this.set(snapshot?.deadLetters ?? 0);
    },
  });
  for (const [actor, stat, name, help, scale] of NAMED) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = actors().find((a) => a.actor === actor)?.custom[stat];
        if (v !== undefined) this.set(v * scale);
      },
    });
  }
  new Gauge({
    name: 'warden_detection_verdicts',
    help: 'Stage verdicts scored against the ground truth (tp, fp, tn, fn).',
    labelNames: ['stage', 'outcome'],
    registers: [registry],
    collect() {
      const e = actors().find((a) => a.actor === 'episodes')?.custom;
      if (!e) return;
      for (const stage of ['1', '2'])
        for (const o of ['tp', 'fp', 'tn', 'fn'])
          this.set({ stage, outcome: o }, e[`stage${stage}_${o}`] ?? 0);
    },
  });
  perSandbox(
    'warden_telemetry_defaults_applied',
    'Telemetry fields a receiver filled with defaults (malformed or missing input).',
    (r) => r.defaultsApplied ?? 0,
  );
  new Gauge({
    name: 'warden_db_rows',
    help: 'Rows of the DB writer by outcome: stored at once (persisted), put in the local journal while the database was away (queued), stored from the journal later (replayed), or lost (refused: invalid, journal full or unwritable).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const w = actors().find((a) => a.actor === 'db-writer')?.custom;
      if (!w) return;
      for (const outcome of ['persisted', 'queued', 'replayed', 'refused'])
        this.set({ outcome }, w[outcome] ?? 0);
    },
  });
  // Decision latency as a Prometheus histogram (p50/p95/p99 via histogram_quantile): the
  // episodes actor keeps cumulative bucket counts; rendered here in the exposition format.
  const latency = {
    name: 'warden_decision_latency_seconds',
    help: 'Arrival of a telemetry batch at a receiver to its decision.',
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const e = actors().find((a) => a.actor === 'episodes')?.custom ?? {};
      const buckets = Object.entries(e)
        .filter(([k]) => k.startsWith('latency_le:'))
        .map(([k, v]) => ({ le: Number(k.slice('latency_le:'.length)), value: v }))
        .sort((a, b) => a.le - b.le);
      const count = e.decisions ?? 0;
      return {
        name: 'warden_decision_latency_seconds',
        help: 'Arrival of a telemetry batch at a receiver to its decision.',
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...buckets.map((b) => ({
            labels: { le: b.le },
            value: b.value,
            metricName: 'warden_decision_latency_seconds_bucket',
          })),
          {
            labels: { le: '+Inf' },
            value: count,
            metricName: 'warden_decision_latency_seconds_bucket',
          },
          {
            labels: {},
            value: e.latencySumS ?? 0,
            metricName: 'warden_decision_latency_seconds_sum',
          },
          { labels: {}, value: count, metricName: 'warden_decision_latency_seconds_count' },
        ],
      };
    },
  };
  registry.registerMetric(latency as unknown as Parameters<Registry['registerMetric']>[0]);
  new Gauge({
    name: 'warden_decisions_by_action',
    help: 'Decisions by containment action.',
    labelNames: ['action'],
    registers: [registry],
    collect() {
      const e = actors().find((a) => a.actor === 'episodes')?.custom;
      if (!e) return;
      for (const [a, action] of ACTION_LABELS.entries())
        this.set({ action }, e[`action:${a}`] ?? 0);
    },
  });
  new Gauge({
    name: 'warden_model_info',
    help: 'The model version in service (value 1; "rules" when the rule table decides).',
    labelNames: ['version'],
    registers: [registry],
    collect() {
      this.reset();
      if (sources.modelVersion) this.set({ version: sources.modelVersion() }, 1);
    },
  });
  // Each sandbox's stream, from its receiver's stats.
  const receiverGauges: readonly (readonly [
    string,
    string,
    (r: Record<string, number>) => number,
  ])[] = [
    [
      'warden_receiver_events',
      "Events a receiver accepted from its sandbox's stream (telemetry and episode lifecycle) since it started.",
      (r) => r.events ?? 0,
    ],
    [
      'warden_receiver_repeated_events',
      'Events the sandbox sent again (at or below the last sequence number accepted for their stage, a second start before any telemetry, a second outcome, an event of a stage that ended), dropped instead of decided twice.',
      (r) => r.repeated ?? 0,
    ],
    [
      'warden_receiver_rejected_events',
      'Events from the sandbox rejected as malformed (each on its own; the rest of its batch went on).',
      (r) => r.rejected ?? 0,
    ],
    [
      'warden_receiver_streams_lost',
      "Times a receiver's stream from its sandbox failed (unreachable, refused, cut, TLS) and it subscribed again with backoff; a stream the sandbox ends cleanly is not counted.",
      (r) => r.lost ?? 0,
    ],
    [
      'warden_receiver_oversized_batches',
      'Streams that ended because a batch from the sandbox was over its maxMessageBytes (RESOURCE_EXHAUSTED); the receiver asks for half as many events per batch each time (WatchRequest.max_batch). Also counted in warden_receiver_streams_lost.',
      (r) => r.oversized ?? 0,
    ],
    [
      'warden_receiver_last_batch_timestamp_seconds',
      'When the last batch of events came from the sandbox (Unix seconds; 0 before the first).',
      (r) => (r.lastBatchAt ?? 0) / 1000,
    ],
    [
      'warden_receiver_events_in_flight',
      'Events a receiver handed on that the adapter has not finished (backpressure at telemetry.intakeWindow).',
      (r) => r.inFlight ?? 0,
    ],
    [
      'warden_receiver_paused_seconds',
      "Time a receiver stopped reading its sandbox's stream because the adapter was a full window behind (the sandbox streams faster than its events are decided).",
      (r) => (r.pausedMs ?? 0) / 1000,
    ],
    [
      'warden_receiver_throttled_seconds',
      "Time a receiver stopped reading its sandbox's stream to keep it under its maxEventsPerSecond.",
      (r) => (r.throttledMs ?? 0) / 1000,
    ],
  ];
  for (const [name, help, pick] of receiverGauges) perSandbox(name, help, pick);
  new Gauge({
    name: 'warden_telemetry_field_defaults',
    help: 'Telemetry fields filled with a default, by sandbox and field.',
    labelNames: ['sandbox', 'field'],
    registers: [registry],
    collect() {
      this.reset();
      for (const a of actors()) {
        if (!a.actor.startsWith('receiver:')) continue;
        for (const [k, v] of Object.entries(a.custom))
          if (k.startsWith('default:'))
            this.set({ sandbox: a.actor.slice(9), field: k.slice(8) }, v);
      }
    },
  });
  // The configuration watcher's view (start.ts passes it): is the configuration on disk what runs?
  const configGauges: readonly (readonly [string, string, (c: ConfigStatus) => number])[] = [
    [
      'warden_config_fields_defaulted',
      'Fields of the configuration files that fell back to their defaults when last read (invalid or unknown; the log names them, as does warden config check).',
      (c) => c.defaulted.length,
    ],
    [
      'warden_config_restart_pending',
      'Fields changed in the configuration files that keep their running value until Warden restarts.',
      (c) => c.restartPending.length,
    ],
    [
      'warden_config_reload_failures',
      'Configuration reloads that could not read the files (a broken or half-written file): the running configuration stayed.',
      (c) => c.reloadFailures,
    ],
  ];
  for (const [name, help, pick] of configGauges)
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (sources.config) this.set(pick(sources.config()));
      },
    });
  new Gauge({
    name: 'warden_ready',
    help: 'Each check of /ready at this scrape (1 passes, 0 fails): running (0 once a stop began), database (answers within 2 s; 0 while it is away, even with nothing to write), model (always 1: the version served is in warden_model_info).',
    labelNames: ['check'],
    registers: [registry],
    async collect() {
      if (!sources.readiness) return;
      const { checks } = await sources.readiness();
      for (const [check, { ok }] of Object.entries(checks)) this.set({ check }, ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'warden_tls_certificate_expiry_timestamp_seconds',
    help: 'When each configured TLS certificate expires (Unix seconds; the first certificate of its file, read at every scrape, so renewals show at once).',
    labelNames: ['use', 'file'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { use, file } of configuredCertificates(system.config)) {
        const expiry = certificateExpiry(file);
        if (expiry !== undefined) this.set({ use, file }, expiry);
      }
    },
  });
  return {
    registry,
    async scrape() {
      await refresh();
      return registry.metrics();
    },
  };
}

export async function startMetricsServer(
  system: ActorSystem,
  port: number,
  host: string,
  log: Logger,
  sources: MetricsSources = {},
): Promise<{ port: number; stop(): Promise<void> }> {
  const { registry, scrape } = metricsRegistry(system, sources);
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      scrape()
        .then((body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch((error) => {
          log.error({ err: error }, 'metrics collection failed');
          res.writeHead(500).end();
        });
    } else if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else if (req.method === 'GET' && req.url === '/ready' && sources.readiness) {
      sources
        .readiness()
        .then(({ ready, checks }) => {
          res
            .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: ready ? 'ready' : 'not ready', checks }));
        })
        .catch((error) => {
          log.error({ err: error }, 'readiness check failed');
          res.writeHead(500).end();
        });
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  log.info({ host, port: bound }, 'metrics listening');
  return { port: bound, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
