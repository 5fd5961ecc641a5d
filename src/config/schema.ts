// The one definition of Warden's configuration: TypeScript type, JSON Schema (config/schema.json)
// and validation all come from it. Defaults here are the safe defaults invalid values fall back to.
// `restart: true` marks a field that is read once at start: a hot reload reports it, not applies it.

import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { ENCRYPTABLE_FIELDS } from '../security/field-crypto.ts';

const restart = { restart: true } as const;

const Int = (def: number, minimum: number, maximum: number, extra: object = {}) =>
  Type.Integer({ default: def, minimum, maximum, ...extra });
const Num = (def: number, minimum: number, maximum: number, extra: object = {}) =>
  Type.Number({ default: def, minimum, maximum, ...extra });

export const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const ACTOR_NAMES = [
  'receiver',
  'adapter',
  'inference',
  'dispatcher',
  'episodes',
  'learner',
  'registry',
  'db-writer',
  'experience-feed',
] as const;

const Supervision = Type.Object(
  {
    maxRestarts: Int(5, 0, 1000, {
      description: 'Restarts allowed within windowMs before giving up.',
    }),
    windowMs: Int(60_000, 1_000, 3_600_000),
    backoffInitialMs: Int(100, 1, 60_000),
    backoffMaxMs: Int(10_000, 1, 600_000),
  },
  { default: {} },
);

const Runtime = Type.Object(
  {
    placement: Type.Record(
      Type.String({ pattern: '^[a-z][a-z0-9-]*$' }),
      Type.Array(Type.String()),
      {
        default: {
          io: ['receiver', 'dispatcher'],
          hot: ['adapter'],
          control: ['episodes', 'db-writer'],
          learner: ['learner'],
        },
        description: 'Worker thread name → actors it hosts. Actors in one entry share a thread.',
        ...restart,
      },
    ),
    background: Type.Array(Type.String(), {
      default: ['learner', 'experience-feed', 'episodes', 'db-writer', 'registry'],
      description:
        'Actors off the event → action path. A worker thread hosting only these runs backgroundNice lower in priority (Linux), so the receivers, the adapter and the inference worker get a core first.',
      ...restart,
    }),
    backgroundNice: Int(5, 0, 19, {
      description:
        'How much lower background threads run (added to their nice value, at most 19): 0 the same as the others. e2e at 10k events/s, p99 median: 18.6 ms at 0, 10.7 at 5, 12.7 at 10; 5 leaves them a larger share when other processes load the host.',
      ...restart,
    }),
    backgroundIdle: Type.Boolean({
      default: false,
      description:
        "Linux: background threads also run under the SCHED_IDLE policy (set with util-linux's chrt): they get a core only when no other thread wants one, and a waking receiver, adapter or inference worker takes it from them at once. Learning then waits for spare cycles, and the episodes actor and DB writer hold the sandboxes back (receiver backpressure) when they fall behind. Without chrt, backgroundNice alone applies (logged). e2e, three interleaved pairs (medians, off → on): 10k events/s p50 11.1 → 5.2 ms, p99 67 → 37 ms; full speed 17.9k → 19.4k events/s, but at saturation the p99 reached 1.4-2.4 s in two runs of three (the streams held while the starved episodes actor caught up), so it stays off by default.",
      ...restart,
    }),
    supervision: Supervision,
    shutdownTimeoutMs: Int(5_000, 100, 120_000),
    resumeDir: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description:
        "Where a stopping Warden leaves the episode stages still open (each receiver's record of what it accepted, the adapter's running state vectors, the episodes' decisions so far), so that after a restart the sandboxes go on with them and the episodes complete, outcomes sent while Warden was down included (runtime/resume.ts). Taken up only after a stop that finished in time and with the same telemetry.stateDim and horizon; otherwise those episodes are stored as partial at the next start. null = off (the default here; the shipped dev, staging and prod files set var/resume): a stop stores open episodes as partial. `warden start` (and run --demo) leaves it off: its reference sandboxes do not outlive the run.",
      ...restart,
    }),
    mailboxCapacity: Int(10_000, 16, 10_000_000, {
      description: 'Messages buffered per actor while it is busy or restarting.',
      ...restart,
    }),
  },
  { default: {} },
);

const Telemetry = Type.Object(
  {
    stateDim: Int(64, 32, 100, {
      description:
        'State vector dimension: 28 fixed features, then hashed API names and bigrams (≤ 100 to fit cube).',
      ...restart,
    }),
    horizon: Int(100, 1, 1_000_000, { description: 'Events per stage used to scale progress.' }),
    maxEventBytes: Int(65_536, 256, 16_777_216, {
      description: 'Larger telemetry events are rejected.',
    }),
    maxStringLength: Int(1_024, 16, 65_536, {
      description: 'Longer strings are truncated and counted.',
    }),
    maxArrayLength: Int(256, 1, 65_536, { description: 'Longer lists are cut and counted.' }),
    maxDepth: Int(8, 2, 64, { description: 'Deeper JSON nesting is rejected.' }),
    maxEventsPerStage: Int(10_000, 10, 100_000_000, {
      description:
        'Telemetry events of one episode stage that are decided on; later ones are counted and not decided (a flooding sample).',
    }),
    intakeWindow: Int(20_000, 100, 10_000_000, {
      description:
        "Events a receiver hands on that the adapter has not finished with yet (requirement 1.5: at least 10,000 buffered). A receiver that reaches it stops reading its sandbox's stream until half are done, so a sandbox streaming faster than Warden decides meets gRPC flow control instead of an unbounded queue.",
    }),
    maxOpenStages: Int(100_000, 100, 10_000_000, {
      description:
        'Episode stages the adapter tracks at once; beyond it the least recently active one is dropped and counted.',
    }),
  },
  { default: {} },
);

const Replay = Type.Object(
  {
    capacity: Int(1_000_000, 10_000, 50_000_000, {
      description: 'Transitions kept (property 5).',
      ...restart,
    }),
    prioritized: Type.Boolean({ default: true }),
    alpha: Num(0.6, 0, 1, { description: 'Priority exponent.' }),
    beta: Num(0.4, 0, 1, { description: 'Importance-sampling exponent.' }),
    keepOldShare: Num(0.2, 0, 0.9, {
      description:
        'Learner hosts: share of each replay intake drawn from older experiences (all history in PostgreSQL), so new data does not wipe out what was learned; 0 = off.',
    }),
    priorityEpsilon: Num(1e-6, 0, 1),
    nStep: Int(3, 1, 10, { description: 'Steps summed into one return.' }),
  },
  { default: {} },
);

const Learning = Type.Object(
  {
    learningRate: Num(1e-3, 1e-7, 1),
    gamma: Num(1, 0, 1, {
      description:
        'Discount. 1 = none: a stage ends by its horizon, and with 0.99 a verdict 100 calls away was worth a third, so the agent decided after a few calls (held-out balanced accuracy 0.72–0.76 vs 0.80–0.82 with 1 and rewards.perEvent −0.003).',
    }),
    epsilonStart: Num(1, 0, 1),
    epsilonEnd: Num(0.05, 0, 1),
    epsilonDecay: Num(0.995, 0, 1, { description: 'Multiplied into epsilon after every episode.' }),
    batchSize: Int(64, 1, 65_536, {
      description:
        'Samples per update, online and in warden train (--batch-size). 128 is not clearly better: held-out AUC 0.819 against 0.790 over six seeds of train() in one measurement, 0.749 against 0.765 over six seeds of warden train in another (1,500 episodes; seed spread 0.68-0.87); online it takes 0.26 cores instead of 0.17 and the e2e bench falls from 24.6k to 19.3k events/s on 2 cores.',
    }),
    minReplay: Int(64, 1, 10_000_000, {
      description: 'Updates start once the replay holds this many.',
    }),
    targetSyncEvery: Int(1_000, 1, 10_000_000, {
      description: 'Hard target sync period in updates.',
    }),
    tau: Num(0, 0, 1, { description: 'Soft target update rate; 0 means hard sync.' }),
    loss: Type.Union([Type.Literal('mse'), Type.Literal('huber')], { default: 'huber' }),
    doubleDqn: Type.Boolean({ default: true }),
    dueling: Type.Boolean({ default: false, ...restart }),
    gradClip: Num(10, 0, 1e6, { description: 'Global gradient-norm clip; 0 disables.' }),
    updatesPerTransition: Num(0.25, 0.001, 64, {
      description:
        'Online learning: updates per transition added to the replay (DQN: one per four steps).',
    }),
    hindsightStates: Int(8, 0, 10_000, {
      description:
        'Online learning: states of each labelled stage 1, evenly spread and including the decided one, at which every verdict goes into the replay with the reward it would have earned (episodes/hindsight.ts); 0 = off.',
    }),
    maxUpdatesPerSecond: Int(100, 1, 1_000_000, {
      description: 'Online learning cap, so training leaves the cores to decisions.',
    }),
    exportEvery: Int(5_000, 1, 100_000_000, {
      description: 'The learner actor exports a validated model every this many updates.',
    }),
    averageSnapshots: Int(30, 0, 1_000, {
      description:
        'The learner actor exports the mean of its last this many snapshots of the weights, one every learning.averageEvery updates (weight averaging; warden train averages over its last two thirds); 0 exports the last weights.',
    }),
    averageEvery: Int(500, 1, 100_000_000, {
      description: 'Updates between two snapshots of the weights for learning.averageSnapshots.',
    }),
    heldOutData: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description:
        'Recorded telemetry (CSV or JSONL) whose test split judges every exported version; null = the bundled Oliveira set.',
      ...restart,
    }),
    heldOutEpisodes: Int(1_000, 0, 100_000, {
      description:
        'Held-out episodes each exported version is evaluated on, both labels alternating (0 = off; the bundled test split has 440, all of them by default: about 0.1 s through ONNX Runtime); a drop beyond alerts.maxAccuracyDrop raises the degradation alert.',
      ...restart,
    }),
    revertOnForgetting: Type.Boolean({
      default: true,
      description:
        'A candidate whose held-out balanced accuracy falls more than learning.exportTolerance below the best version served since the start is not exported, and the learner goes back to the weights in service; false exports it anyway (the degradation alert is raised beyond alerts.maxAccuracyDrop either way).',
    }),
    resumeLearningRate: Num(1e-5, 1e-9, 1, {
      description:
        'The learning rate while continuing from a trained version: its full rate took the bundled starter from 0.835 to 0.60-0.70 balanced accuracy on 200 held-out episodes within 2,000 updates, 1e-5 (with rehearsal) kept it at 0.83-0.84. Each exported candidate doubles it, up to learningRate. A fresh network starts at learningRate.',
    }),
    rehearsalShare: Num(0.5, 0, 0.9, {
      description:
        "While continuing from a trained version: the share of the replay intake the learner adds from recorded episodes of the training split of learning.heldOutData (each one's stage-1 chain and hindsight verdicts), so fine-tuning does not forget the states the online policy no longer visits (learner/rehearsal.ts); 0 = off.",
      ...restart,
    }),
    rehearsalEpisodes: Int(1_000, 0, 100_000, {
      description:
        "Recorded episodes rehearsed, cycled through (about 60 KB each in the learner's memory at 64 features: 1,000 took 60 MB and 1 s to build).",
      ...restart,
    }),
    exportTolerance: Num(0, 0, 1, {
      description:
        "A candidate replaces the version in service only if its held-out balanced accuracy is at most this far below the best version served since the learner started (0: at least as good; one episode of a label moves it by about 0.0045 on the 440 of the bundled test split). Allowing 0.01 on 200 episodes, npm start exported fine-tuned versions of the starter at 0.825-0.83 against 0.835 whose live FPR was twice the starter's. A worse one is not exported (with learning.revertOnForgetting), and the degradation alert is raised only beyond alerts.maxAccuracyDrop below the version in service.",
    }),
    refusedLearningRateFactor: Num(0.5, 0.01, 1, {
      description:
        'Each candidate not exported multiplies the online learning rate by this, down to learningRate / 1000 (learning that keeps making the model worse goes slower); each exported one divides it back, up to learningRate. 1 = off.',
    }),
    engine: Type.Union([Type.Literal('auto'), Type.Literal('ort'), Type.Literal('tfjs')], {
      default: 'auto',
      description: 'Training engine: auto = ONNX Runtime graph (TensorFlow.js for dueling heads).',
      ...restart,
    }),
    hiddenUnits: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), {
      default: [256, 256],
      minItems: 1,
      maxItems: 8,
      ...restart,
    }),
  },
  { default: {} },
);

const Rewards = Type.Object(
  {
    truePositive: Num(1, 0, 1e6, { description: 'Correct malicious verdict.' }),
    trueNegative: Num(0.5, 0, 1e6, { description: 'Correct release.' }),
    falsePositive: Num(-1, -1e6, 0, { description: 'Benign file stopped.' }),
    falseNegative: Num(-2, -1e6, 0, {
      description: 'Malicious file released; costs more than FP.',
    }),
    perEvent: Num(-0.001, -1e6, 0, {
      description:
        'Time cost per observed event: what waiting one more call for a surer verdict costs. warden train on the Oliveira split, seeds 1–6: −0.001 decides after 27–44 calls, held-out AUC 0.863–0.903 (mean 0.885); −0.003 after 16–32 calls, 0.787–0.880 (mean 0.835); −0.01 ended stages after about 12 calls.',
    }),
    isolation: Num(-0.05, -1e6, 0, { description: 'Cost of raising isolation.' }),
    review: Num(-0.3, -1e6, 0, { description: 'Cost of human review.' }),
    unapplied: Num(-0.1, -1e6, 0, {
      description:
        'Feedback: an action the sandbox could not apply (or that failed after every retry) — the step did not contain the sample.',
    }),
  },
  { default: {} },
);

const Inference = Type.Object(
  {
    workers: Int(1, 1, 64, {
      description: 'Inference worker threads, each with its own ONNX Runtime session.',
      ...restart,
    }),
    maxBatch: Int(64, 1, 4096, { description: 'Most requests one inference run takes.' }),
    maxWaitUs: Int(0, 0, 100_000, {
      description: 'How long a worker waits for a batch to fill once it holds a request.',
    }),
    ringCapacity: Int(4096, 16, 1_048_576, {
      description: 'Requests buffered per worker (rounded up to a power of two).',
      ...restart,
    }),
    epsilon: Num(0, 0, 1, {
      description:
        'Share of live decisions taken at random, for online learning. Random verdicts are random containment, and the learner gets every verdict at spread states of each labelled episode anyway (learning.hindsightStates): npm start for 40 s with the starter served stage-1 TPR 95.3% / FPR 14.8% at 0.005, 96.8% / 4.7% at 0.',
    }),
    verdictMargin: Num(0, 0, 1e6, {
      description:
        'A stage-ending action (terminate, quarantine, review, release) is taken only when its Q-value beats the better of continue and raise-isolation by at least this much; short of that the agent observes on. 0 = greedy. It trades calls for a later, better-informed verdict: the six default models of warden train (seeds 1-16) on the bundled held-out split, mean AUC / balanced accuracy / calls 0.912 / 0.866 / 37.5 at 0, 0.924 / 0.866 / 48.6 at 0.05, 0.930 / 0.867 / 62.6 at 0.1, 0.935 / 0.853 / 93.0 at 0.3 (warden eval --verdict-margin).',
    }),
    decisionLogSample: Num(0.01, 0, 1, {
      description:
        'Share of decisions logged with action and confidence (1 = every one; sample when the rate is high).',
    }),
    decisionLogLevel: Type.Union(
      ['error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)),
      { default: 'debug', description: 'Level decision log lines are written at.' },
    ),
  },
  { default: {} },
);

const File = (description: string) => Type.String({ minLength: 1, description });
const NullableFile = (description: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description });

const ClientTls = Type.Object({
  caFile: File('PEM CA bundle that verifies the server certificate.'),
  certFile: Type.Optional(NullableFile('PEM client certificate for mutual TLS.')),
  keyFile: Type.Optional(NullableFile('PEM private key of certFile.')),
  serverName: Type.Optional(
    Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description: "Name expected in the server's certificate when it differs from the host.",
    }),
  ),
});

const ServerTls = Type.Object({
  certFile: File('PEM server certificate (chain).'),
  keyFile: File('PEM private key of certFile.'),
  clientCaFile: Type.Optional(NullableFile('PEM CA that client certificates must chain to.')),
  requireClientCert: Type.Optional(
    Type.Boolean({
      default: false,
      description: 'Mutual TLS: refuse clients without a valid certificate.',
    }),
  ),
});

const Sandboxes = Type.Array(
  Type.Object({
    name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
    address: Type.String({
      minLength: 3,
      description: 'host:port of the sandbox gRPC service.',
    }),
    tls: Type.Optional(
      Type.Union([ClientTls, Type.Null()], {
        default: null,
        description:
          'TLS to this sandbox (mutual with certFile/keyFile); null = plaintext, allowed on loopback only unless security.allowPlaintextRemote.',
      }),
    ),
    maxEventsPerSecond: Type.Optional(
      Int(0, 0, 10_000_000, {
        description:
          "Most events (telemetry and lifecycle) read from this sandbox per second, in bursts of at most a tenth of a second's worth; above it the receiver paces its reading and the sandbox meets gRPC flow control, so one sandbox cannot take the whole machine from the others. 0 = no cap.",
      }),
    ),
    maxMessageBytes: Type.Optional(
      Int(4 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024, {
        description:
          'Largest gRPC message to or from this sandbox (one EventBatch, one ActionBatch). The receiver asks for at most as many events per batch as fit in it at telemetry.maxEventBytes each (WatchRequest.max_batch, at most 64); a batch over it ends the stream (RESOURCE_EXHAUSTED), which is logged as an error, and the receiver asks for half as many from then on.',
      }),
    ),
    deadlineMs: Type.Optional(
      Type.Union([Type.Integer({ minimum: 10, maximum: 60_000 }), Type.Null()], {
        default: null,
        description:
          'Deadline of one batch of actions to this sandbox (its acks on ActStream, or one Act call); null = dispatch.deadlineMs.',
      }),
    ),
  }),
  {
    default: [],
    maxItems: 256,
    description:
      'Sandboxes to connect to, each { name, address, tls, maxEventsPerSecond, maxMessageBytes, deadlineMs } (`warden start` adds its two reference sandboxes). All of it applies live: a sandbox added gets its receiver and a client for its actions, one removed has its receiver stopped (its open episodes end as partial when they time out, unless it is added back before then: it goes on where it stood), a new address, TLS or maxMessageBytes moves its stream there, resuming where it stood; maxEventsPerSecond (0 = no cap) paces the reading of a sandbox that would take the machine from the others.',
  },
);

const Dispatch = Type.Object(
  {
    deadlineMs: Int(2_000, 10, 60_000, {
      description: 'Deadline of one batch of actions (its acks on ActStream, or one Act call).',
    }),
    retryDelaysMs: Type.Array(Type.Integer({ minimum: 0, maximum: 600_000 }), {
      default: [1_000, 2_000, 4_000],
      maxItems: 10,
      description:
        'Waits before each retry of a failed Act (exponential backoff, at most this many retries).',
    }),
    reconnectInitialMs: Int(100, 1, 60_000, {
      description: 'First wait before a receiver reconnects.',
    }),
    reconnectMaxMs: Int(5_000, 1, 600_000, { description: 'Longest wait between reconnects.' }),
    episodeTimeoutMs: Int(60_000, 100, 86_400_000, {
      description: 'An episode silent this long is stored as partial.',
    }),
    maxOpenEpisodes: Int(100_000, 100, 10_000_000, {
      description:
        'Episodes tracked at once; beyond it the least recently active one is stored as partial and counted (a sandbox opening episodes it never ends cannot exhaust memory before episodeTimeoutMs).',
    }),
    maxEpisodeDurationMs: Int(3_600_000, 1_000, 604_800_000, {
      description:
        'An episode still running after this long is closed and stored as partial (a sample cannot hold a slot forever).',
    }),
  },
  { default: {} },
);

const Alerts = Type.Object(
  {
    window: Int(200, 10, 100_000, {
      description: 'Scored stage-1 verdicts per model version in the rolling window.',
    }),
    minEpisodes: Int(50, 5, 100_000, {
      description: 'Verdicts a version needs before it is compared.',
    }),
    maxAccuracyDrop: Num(0.1, 0, 1, {
      description: 'Alert when accuracy falls this much below the previous version.',
    }),
    maxRewardDrop: Num(0.5, 0, 1e6, {
      description: 'Alert when average reward falls this much below the previous version.',
    }),
    webhook: Type.Union([Type.String({ pattern: '^https?://' }), Type.Null()], {
      default: null,
      description:
        'POST each degradation alert as JSON here; a network error, a 5-second timeout, 408, 429 or 5xx is retried after 1, 2 and 4 s, any other status is logged as a refusal; a stop waits up to 15 s for alerts still being posted. Logs and config show print only its origin: a credential in the path stays out of them.',
    }),
    autoRollback: Type.Boolean({
      default: false,
      description: 'Roll back to the previous model when a version degrades.',
    }),
  },
  { default: {} },
);

const Models = Type.Object(
  {
    dir: Type.String({
      default: 'models',
      minLength: 1,
      description: 'Versioned ONNX models, metadata and the latest pointer.',
      ...restart,
    }),
    publicKey: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description:
        'Ed25519 public key (PEM file path) that model signatures are verified against; null = no verification.',
    }),
    requireSignature: Type.Boolean({
      default: false,
      description:
        'Refuse models without a valid signature (needs publicKey). The signing key comes from WARDEN_MODEL_SIGNING_KEY.',
    }),
    keepVersions: Int(100, 0, 1_000_000, {
      description:
        'Versions kept in models.dir: after each export (learner) or fetch from the registry (inference host) the oldest beyond this many are deleted, never the latest (about 340 KB each at the default network; one export per exportEvery updates). 0 keeps all.',
    }),
  },
  { default: {} },
);

const Metrics = Type.Object(
  {
    port: Int(9464, 0, 65_535, {
      description: 'Prometheus /metrics on this port (0 = any free port).',
      ...restart,
    }),
    host: Type.String({
      default: '127.0.0.1',
      minLength: 1,
      description: 'Bind address; loopback unless you mean otherwise.',
      ...restart,
    }),
  },
  { default: {} },
);

const Logging = Type.Object(
  {
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    dir: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description:
        'Write logs as daily files per thread here (warden-<thread>.<date>.<n>.log); null = stdout.',
      ...restart,
    }),
    keepDays: Int(30, 1, 3_650, {
      description: 'Daily log files kept per thread (older ones are removed at rotation).',
      ...restart,
    }),
  },
  { default: {} },
);

/**
 * Server settings of the embedded PostgreSQL (a server of its own, so sized for Warden's writes):
 * measured with 3 writers, 400k 64-dim patterns: 45.8k → 50.0k rows/s over the stock settings
 * (128 MB buffers, 1 GB of WAL between checkpoints). WAL may take up to max_wal_size on disk.
 */
export const EMBEDDED_POSTGRES_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '512MB',
  wal_buffers: '64MB',
  max_wal_size: '4GB',
};

const Database = Type.Object(
  {
    url: Type.Union([Type.String(), Type.Null()], {
      default: null,
      description: 'From DATABASE_URL only; null runs the embedded PostgreSQL.',
      ...restart,
    }),
    dataDir: Type.String({ default: 'var/postgres', minLength: 1, ...restart }),
    embeddedSettings: Type.Record(
      Type.String({ pattern: '^[a-z_]+$' }),
      Type.String({ pattern: '^[A-Za-z0-9_.]+$' }),
      {
        default: EMBEDDED_POSTGRES_SETTINGS,
        description:
          'postgresql.conf settings of the embedded server (name → value); unused with DATABASE_URL.',
        ...restart,
      },
    ),
    queryPort: Int(50_151, 0, 65_535, {
      description: 'Port of the PatternQuery and Admin gRPC services (0 = any free port).',
      ...restart,
    }),
    sanitizePaths: Type.Boolean({
      default: true,
      description: 'Hash file paths inside stored text fields.',
    }),
    sanitizeIps: Type.Boolean({
      default: true,
      description: 'Hash IP addresses inside stored text fields.',
    }),
    journalDir: Type.String({
      default: 'var/journal',
      minLength: 1,
      description: 'Durable local queue for rows the database could not take.',
      ...restart,
    }),
    journalMaxBytes: Int(268_435_456, 65_536, 1e12, {
      description: 'The journal refuses rows (with an alert) beyond this size.',
    }),
    retryMs: Int(30_000, 10, 3_600_000, {
      description:
        'Longest wait between retries of queued rows while the database is away: the first retry comes 1 s after rows begin to queue, then 2 s, 4 s, … up to this.',
    }),
    writeTimeoutMs: Int(30_000, 1_000, 3_600_000, {
      description:
        'A batch the database has not committed by then counts as an outage: its rows go to the local journal and the connection is dropped (a journal replay batch, up to 16 MiB, gets four times this). Without it a stalled server (stopped, or cut off without a reset) held every batch in memory while it stalled (measured: 11 MB/s at full speed, with nothing logged).',
    }),
    batchRows: Int(5_000, 1, 100_000, {
      description:
        'Rows per insert batch (a batch also leaves after 50 ms). Measured with 3 writers: 1,000 → 32k, 2,000 → 43k, 5,000 → 48k rows/s.',
    }),
    maxBufferedRows: Int(20_000, 100, 10_000_000, {
      description:
        'Rows the DB writer holds while every write connection is busy; past it they go to the local journal (the database is slower than rows arrive) and are written by its replay once it catches up.',
    }),
    writeConnections: Int(4, 1, 16, {
      description:
        'Insert batches the DB writer has in flight at once, each on its own connection (measured on 2 cores, 5,000-row batches: 1 → 2 → 3 → 4 writers 30k → 42k → 46k → 51k rows/s).',
      ...restart,
    }),
  },
  { default: {} },
);

export const HOST_ROLES = ['all', 'inference', 'learner'] as const;
export type HostRole = (typeof HOST_ROLES)[number];

const Cluster = Type.Object(
  {
    role: Type.Union(
      HOST_ROLES.map((r) => Type.Literal(r)),
      {
        default: 'all',
        description:
          "all: one host does everything (default). inference: receivers, adapter, dispatcher, episodes; experiences go to PostgreSQL, models come from it. learner: learns from every host's experiences and publishes models (one leader at a time).",
        ...restart,
      },
    ),
    hostId: Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.Null()], {
      default: null,
      description: "Name of this host in the fleet (null = the machine's host name).",
      ...restart,
    }),
    pollMs: Int(200, 10, 60_000, {
      description: 'How often the learner reads new experience rows.',
    }),
    batchRows: Int(5_000, 100, 1_000_000, {
      description: 'Experience rows the learner reads per turn.',
    }),
    standbyPollMs: Int(1_000, 100, 60_000, {
      description: 'How often a standby learner tries to take over leadership.',
      ...restart,
    }),
  },
  { default: {} },
);

export const ROLES = ['read', 'operate'] as const;
export type Role = (typeof ROLES)[number];

const Security = Type.Object(
  {
    allowPlaintextRemote: Type.Boolean({
      default: false,
      description:
        'Allow gRPC without TLS to or on non-loopback addresses (sandboxes, services). Off: such a channel is refused at start.',
      ...restart,
    }),
    certReloadMs: Int(60_000, 1_000, 86_400_000, {
      description:
        'How often TLS certificate and key files are re-read (renewals need no restart).',
      ...restart,
    }),
    services: Type.Object(
      {
        host: Type.String({
          default: '127.0.0.1',
          minLength: 1,
          description: 'Bind address of the PatternQuery and Admin gRPC services.',
          ...restart,
        }),
        tls: Type.Union([ServerTls, Type.Null()], {
          default: null,
          description: 'TLS (and mutual TLS) for the PatternQuery and Admin services.',
          ...restart,
        }),
      },
      { default: {} },
    ),
    auth: Type.Object(
      {
        required: Type.Boolean({
          default: true,
          description:
            'PatternQuery and Admin calls need a bearer token (WARDEN_AUTH_TOKENS) or a mapped client certificate.',
          ...restart,
        }),
        clientCertRoles: Type.Array(
          Type.Object({
            commonName: Type.String({ minLength: 1, maxLength: 256 }),
            roles: Type.Array(Type.Union(ROLES.map((r) => Type.Literal(r))), { minItems: 1 }),
          }),
          {
            default: [],
            maxItems: 1_000,
            description:
              'Roles of verified client certificates by subject common name (read = query patterns, operate = admin).',
            ...restart,
          },
        ),
      },
      { default: {} },
    ),
    encryption: Type.Object(
      {
        fields: Type.Array(Type.Union(ENCRYPTABLE_FIELDS.map((f) => Type.Literal(f))), {
          default: [],
          uniqueItems: true,
          description:
            'Stored text fields encrypted with AES-256-GCM (key from WARDEN_ENCRYPTION_KEYS) before the database or the journal sees them.',
          ...restart,
        }),
        keyId: Type.Union([Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$' }), Type.Null()], {
          default: null,
          description:
            'Key id in WARDEN_ENCRYPTION_KEYS that new values are encrypted with (null = the first listed); older keys still decrypt.',
          ...restart,
        }),
      },
      { default: {} },
    ),
  },
  { default: {} },
);

export const ConfigSchema = Type.Object(
  {
    environment: Type.Union(
      ENVIRONMENTS.map((e) => Type.Literal(e)),
      { default: 'dev', ...restart },
    ),
    runtime: Runtime,
    telemetry: Telemetry,
    replay: Replay,
    learning: Learning,
    rewards: Rewards,
    inference: Inference,
    alerts: Alerts,
    sandboxes: Sandboxes,
    dispatch: Dispatch,
    models: Models,
    metrics: Metrics,
    logging: Logging,
    database: Database,
    security: Security,
    cluster: Cluster,
  },
  { $id: 'https://warden.invalid/config.schema.json', title: 'Warden configuration' },
);

export type WardenConfig = Static<typeof ConfigSchema>;
export type SchemaNode = TSchema;
