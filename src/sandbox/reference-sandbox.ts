// The reference sandbox (`warden sandbox`): a real gRPC server implementing the sandbox contract
// by replaying recorded telemetry, so the whole system runs on one machine.
//
//   Each episode runs stage 1, then stage 2 under the same id: in one instance (role "both"), or,
//   as DESIGN §1 deploys them, in two — the positive sandbox (role "positive", stage 1) hands each
//   file, cleaned or as it was, to the negative sandbox (role "negative", stage 2) it was given as
//   `next`; the positive one counts an episode as running until the negative one has finished it.
//   Events stream in batches, several episodes at once (round-robin), as fast as the stream takes
//   them or at a fixed rate.
//   A stage ends when Warden sends a stage-ending action (TERMINATE, QUARANTINE, REQUEST_REVIEW,
//   RELEASE), when it acts on the last event without ending it (released at the end), or
//   stageTimeoutMs after the last event. Stage 1's malicious verdict (terminate, quarantine,
//   review) cleans the file — successfully with probability cleanSuccessRate for malware — and a
//   cleaned file behaves like goodware in stage 2 (a benign trace is replayed, truth benign).
//   Outcomes report the sandbox's detection, the cleaning, and the ground truth.
//   A new Watch resumes as the contract asks (resume_after: the last event the receiver accepted
//   per open stage): a stage it names continues after that event, an open stage it does not name
//   starts again from its episode-started, and the outcome of a stage it names that has ended here
//   is sent again — the sandbox cannot know what a cut stream delivered.
//   With nothing to send it sends an empty batch every heartbeatMs (5 s), as the contract asks.
//   Fault injection for tests: cut the stream after N batches (that batch is lost, as on a real
//   cut); refuse the first N batches of actions (an Act call, or a message on ActStream, which
//   ends that stream); delay the acks of the first N batches of actions; crash() mid-episode.

import * as grpc from '@grpc/grpc-js';
import { fnv1a } from '../actors/adapter/state-vector.ts';
import { type ActionId, MALICIOUS_VERDICTS, STAGE_ENDING_ACTIONS } from '../messages/action.ts';
import type { Label, Stage } from '../messages/episode.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import type { TelemetryEvent } from '../messages/telemetry.ts';
import type { Logger } from '../runtime/logger.ts';
import { OldestFirstMap } from '../runtime/oldest-first-map.ts';
import {
  DEFAULT_TRANSPORT,
  type ServerTls,
  serverCredentials,
  type TransportPolicy,
} from '../security/tls.ts';
import { type ActionRequestRead, decodeActionBatch } from './action-batch.ts';
import {
  type BatchItem,
  encodedEvents,
  encodeEventBatch,
  prepareRecorded,
  withEncodedBatches,
} from './event-batch.ts';
import { type ActionAckWire, channelOptions, sandboxPackage } from './grpc.ts';

/** Which stages an instance runs (see the header). */
export type SandboxRole = 'both' | 'positive' | 'negative';

export interface ReferenceSandboxOptions {
  readonly name: string;
  /** What the instance replays (a negative sandbox replays what its positive one hands it). */
  readonly traces: readonly RecordedTrace[];
  /** Goodware traces a successfully cleaned file replays in stage 2. */
  readonly benign: readonly RecordedTrace[];
  readonly concurrency?: number;
  readonly batchSize?: number;
  /** Events per second over all episodes; undefined = as fast as possible. */
  readonly eventsPerSecond?: number;
  /**
   * Real time: each stage replays its events with the gaps of their recorded timestamps,
   * divided by `speed` (1 = as recorded), from the moment the stage starts.
   */
  readonly realTime?: { readonly speed: number };
  readonly cleanSuccessRate?: number;
  /** Stop starting episodes after this many (undefined: cycle through the traces forever). */
  readonly episodes?: number;
  readonly stageTimeoutMs?: number;
  /** With nothing to send, an empty batch this often (ms): the contract's heartbeat. Default 5 s. */
  readonly heartbeatMs?: number;
  readonly seed?: number;
  /** Default "both"; "positive" needs `next`, the negative sandbox its files go on to. */
  readonly role?: SandboxRole;
  readonly next?: ReferenceSandbox;
  readonly faults?: {
    readonly cutStreamAfterBatches?: number;
    readonly refuseActCalls?: number;
    /** The acks of the first `batches` action batches are sent `ms` late. */
    readonly delayActs?: { readonly ms: number; readonly batches: number };
  };
  /** Record, per action, the time from its event leaving the sandbox to the action arriving (benches). */
  readonly measureLatency?: boolean;
  readonly log: Logger;
}

interface StageRun {
  readonly key: string;
  /** Its episode-started, as sent (again, when a resumed Watch does not name the stage). */
  readonly start: WireEvent;
  readonly episodeId: string;
  readonly stage: Stage;
  readonly trace: RecordedTrace;
  /** The trace's events' shared fields, encoded (event-batch.ts encodedEvents). */
  readonly encoded: readonly Uint8Array[];
  readonly truth: Label;
  readonly original: RecordedTrace;
  next: number;
  sentAllAt: number | undefined;
  ended: boolean;
  /** When the stage started (ms): real-time pacing measures from here. */
  readonly startedAt: number;
  /** A negative sandbox's stage 2: tells the positive sandbox that handed it over. */
  readonly finished?: () => void;
}

/** A file a positive sandbox hands to its negative one for stage 2. */
interface Handoff {
  readonly episodeId: string;
  readonly trace: RecordedTrace;
  readonly truth: Label;
  readonly original: RecordedTrace;
  readonly cleaned: boolean;
}

type WireEvent = BatchItem;

const RELEASE = 5 as ActionId;
/** Ended stages whose outcome a resumed Watch can ask for again. */
const OUTCOMES_KEPT = 4_096;
/** What ActionContext.source may say. */
const SOURCES: ReadonlySet<string> = new Set(['model', 'rules', 'exploration']);

/** An ActionBatch from Warden, or why it cannot be read (the call is answered INVALID_ARGUMENT). */
function readActions(bytes: Buffer): ActionRequestRead[] | Error {
  try {
    return decodeActionBatch(bytes);
  } catch (error) {
    return new Error(`malformed ActionBatch: ${(error as Error).message}`);
  }
}

export interface SandboxStats {
  /** Episodes started here (a negative sandbox: files handed to it for stage 2). */
  episodesStarted: number;
  /** Those that finished both stages (a negative sandbox: its stage 2). */
  episodesCompleted: number;
  eventsSent: number;
  /** Episode-started and stage-outcome messages written to the stream. */
  lifecycleSent: number;
  /** Events and lifecycle messages queued again by a resumed Watch (resume_after). */
  eventsResent: number;
  lifecycleResent: number;
  actionsReceived: number;
  /** Actions that arrived without their full context (model version, 6 Q-values, confidence, source). */
  actionsWithoutContext: number;
  actionsApplied: number;
  batchesSent: number;
  /** Batches whose write had to wait for the stream to drain (Warden reading no faster). */
  writesHeld: number;
  /** Act calls and ActStream messages received (actions per batch = actionsReceived / this). */
  actionBatches: number;
  /** Empty batches sent while there was nothing to send (heartbeats). */
  heartbeats: number;
  /** Watch calls taken (a receiver's first subscription and each one after). */
  watches: number;
  /** Fault injection: event streams cut, action batches refused, ack batches held back. */
  streamsCut: number;
  actsRefused: number;
  actsDelayed: number;
}

export class ReferenceSandbox {
  readonly name: string;
  readonly stats: SandboxStats = {
    episodesStarted: 0,
    episodesCompleted: 0,
    eventsSent: 0,
    lifecycleSent: 0,
    eventsResent: 0,
    lifecycleResent: 0,
    actionsWithoutContext: 0,
    actionsReceived: 0,
    actionsApplied: 0,
    batchesSent: 0,
    writesHeld: 0,
    actionBatches: 0,
    heartbeats: 0,
    watches: 0,
    streamsCut: 0,
    actsRefused: 0,
    actsDelayed: 0,
  };
  /** Ground truth per completed stage, for tests and the demo summary. */
  readonly outcomes: {
    episodeId: string;
    stage: Stage;
    verdict: 'malicious' | 'benign';
    truth: Label;
  }[] = [];
  readonly #o: Required<
    Omit<
      ReferenceSandboxOptions,
      'episodes' | 'eventsPerSecond' | 'faults' | 'measureLatency' | 'realTime' | 'next'
    >
  > &
    Pick<
      ReferenceSandboxOptions,
      'episodes' | 'eventsPerSecond' | 'faults' | 'measureLatency' | 'realTime' | 'next'
    >;
  readonly #server = new grpc.Server(channelOptions);
  readonly #runs = new Map<string, StageRun>();
  readonly #pending: WireEvent[] = [];
  /** The outcomes of the stages ended last, by "episode/stage": a resumed Watch may ask again. */
  readonly #outcomes = new OldestFirstMap<string, WireEvent>();
  readonly #seenActions = new OldestFirstMap<string, ActionAckWire>();
  #traceIndex = 0;
  #episodeCounter = 0;
  #wake: (() => void) | undefined;
  #stopped = false;
  #paused = false;
  #batchesThisStream = 0;
  /** Episodes started here and not finished yet (in either stage, wherever it runs). */
  #inFlight = 0;
  /** A negative sandbox's positive one (the files it is handed come from there). */
  #upstream: ReferenceSandbox | undefined;
  readonly #epoch = Date.now().toString(36);
  /** Send time (ms, performance clock) per "episode/stage/seq", while measureLatency is on. */
  readonly #sentAt = new Map<string, number>();
  /** Event-to-action latencies in ms (measureLatency). */
  readonly latencies: number[] = [];

  constructor(options: ReferenceSandboxOptions) {
    this.name = options.name;
    this.#o = {
      concurrency: 8,
      batchSize: 32,
      cleanSuccessRate: 0.9,
      stageTimeoutMs: 2_000,
      heartbeatMs: 5_000,
      seed: 1,
      role: 'both',
      ...options,
    };
    if ((this.#o.role === 'positive') !== (this.#o.next !== undefined))
      throw new Error(
        `reference sandbox ${this.name}: a positive sandbox, and only it, has a next`,
      );
    if (this.#o.next) {
      if (this.#o.next.#o.role !== 'negative' || this.#o.next.#upstream)
        throw new Error(
          `reference sandbox ${this.name}: next must be a negative sandbox not yet in a pair`,
        );
      this.#o.next.#upstream = this;
    }
    this.#server.addService(withEncodedBatches(sandboxPackage().Sandbox.service), {
      watch: (call: grpc.ServerWritableStream<unknown, unknown>) => void this.#watch(call),
      act: (call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        this.#act(call, cb),
      actStream: (call: grpc.ServerDuplexStream<Buffer, unknown>) => this.#actStream(call),
    });
  }

  #port = 0;

  get role(): SandboxRole {
    return this.#o.role;
  }

  /** The port start() bound (0 before). */
  get port(): number {
    return this.#port;
  }

  /** Listens on host:port (0 = any free port); TLS when given, else plaintext on loopback only. */
  async start(
    port = 0,
    host = '127.0.0.1',
    tls: ServerTls | null = null,
    policy: TransportPolicy = DEFAULT_TRANSPORT,
  ): Promise<number> {
    const credentials = serverCredentials(tls, host, `sandbox ${this.name}`, policy);
    const bound = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(`${host}:${port}`, credentials, (e, p) => {
        if (!e) return resolve(p);
        // grpc-js words it "No address added out of total 1 resolved errors: [listen EADDRINUSE…]".
        const reason = /EADDRINUSE/.test(e.message) ? 'address in use' : e.message;
        reject(new Error(`sandbox ${this.name} cannot listen on ${host}:${port}: ${reason}`));
      }),
    );
    this.#port = bound;
    const prepareStarted = performance.now();
    for (const trace of [...this.#o.traces, ...this.#o.benign]) prepareRecorded(trace.events);
    this.#o.log.debug(
      { sandbox: this.name, ms: Math.round(performance.now() - prepareStarted) },
      'recorded telemetry encoded',
    );
    while (this.#inFlight < this.#o.concurrency && this.#startEpisode()) {
      // fill the first slots
    }
    this.#o.log.info(
      { sandbox: this.name, port: bound, traces: this.#o.traces.length },
      'reference sandbox listening',
    );
    return bound;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
  }

  /** Stops emitting (episodes stay open; actions are still applied): lets a bench count both sides. */
  pause(): void {
    this.#paused = true;
  }

  /** Kills the server abruptly (streams cut, calls fail): a crashed sandbox, for tests. */
  crash(): void {
    this.#stopped = true;
    this.#wake?.();
    this.#server.forceShutdown();
  }

  /** Nothing more to stream: every episode this instance will ever see has been sent. */
  get done(): boolean {
    if (this.#runs.size > 0 || this.#pending.length > 0) return false;
    const upstream = this.#upstream;
    if (this.#o.role === 'negative') return upstream?.done === true && upstream.#inFlight === 0;
    return this.#o.episodes !== undefined && this.stats.episodesStarted >= this.#o.episodes;
  }

  /** A file from the positive sandbox: its stage 2 starts here at once. */
  #admit(file: Handoff, finished: () => void): void {
    this.stats.episodesStarted++;
    this.#startStage(
      file.episodeId,
      2,
      file.trace,
      file.truth,
      file.original,
      file.cleaned,
      finished,
    );
  }

  /** An episode started here has ended (stage 2 here, or in the negative sandbox). */
  #episodeFinished(): void {
    this.#inFlight--;
    this.stats.episodesCompleted++;
    if (this.#inFlight < this.#o.concurrency) this.#startEpisode();
    this.#wake?.();
  }

  #startEpisode(): boolean {
    if (this.#stopped || this.#o.role === 'negative' || this.#o.traces.length === 0) return false;
    if (this.#o.episodes !== undefined && this.stats.episodesStarted >= this.#o.episodes)
      return false;
    const trace = this.#o.traces[this.#traceIndex++ % this.#o.traces.length]!;
    const episodeId = `${this.name}-${this.#epoch}-${++this.#episodeCounter}`;
    this.stats.episodesStarted++;
    this.#inFlight++;
    this.#startStage(episodeId, 1, trace, trace.episode.label, trace, false);
    return true;
  }

  #startStage(
    episodeId: string,
    stage: Stage,
    trace: RecordedTrace,
    truth: Label,
    original: RecordedTrace,
    cleaned: boolean,
    finished?: () => void,
  ): void {
    const key = `${episodeId}/${stage}`;
    const start: WireEvent = {
      episodeStarted: {
        sandboxId: this.name,
        episodeId,
        stage,
        timestampMs: Date.now(),
        artifactHash: original.episode.artifactHash,
        artifactType: original.episode.artifactType,
        cleaned,
      },
    };
    this.#runs.set(key, {
      key,
      start,
      episodeId,
      stage,
      trace,
      encoded: encodedEvents(trace.events),
      truth,
      original,
      next: 0,
      sentAllAt: undefined,
      ended: false,
      startedAt: Date.now(),
      ...(finished ? { finished } : {}),
    });
    this.#pending.push(start);
    this.#wake?.();
  }

  #endStage(run: StageRun, action: ActionId, detail: string): void {
    if (run.ended) return;
    run.ended = true;
    this.#runs.delete(run.key);
    const malicious = MALICIOUS_VERDICTS.includes(action) || action === 4;
    const cleaned = run.stage === 1 && malicious;
    const cleaningSucceeded =
      cleaned &&
      run.truth === 'malicious' &&
      fnv1a(`${this.#o.seed}:${run.episodeId}`) / 2 ** 32 < this.#o.cleanSuccessRate;
    this.outcomes.push({
      episodeId: run.episodeId,
      stage: run.stage,
      verdict: malicious ? 'malicious' : 'benign',
      truth: run.truth,
    });
    const outcome: WireEvent = {
      stageOutcome: {
        sandboxId: this.name,
        episodeId: run.episodeId,
        stage: run.stage,
        timestampMs: Date.now(),
        eventsObserved: run.next,
        sandboxDetected: malicious,
        cleaned,
        cleaningSucceeded,
        groundTruth: run.truth === 'malicious' ? 1 : run.truth === 'benign' ? 2 : 0,
        family: run.original.episode.family ?? '',
      },
    };
    this.#pending.push(outcome);
    this.#outcomes.set(run.key, outcome);
    if (this.#outcomes.size > OUTCOMES_KEPT) this.#outcomes.shift();
    this.#o.log.debug(
      { sandbox: this.name, episode: run.episodeId, stage: run.stage, action, detail },
      'stage ended',
    );
    if (run.stage === 1) {
      const benign = this.#o.benign;
      const file: Handoff =
        cleaningSucceeded && benign.length > 0
          ? {
              episodeId: run.episodeId,
              trace: benign[fnv1a(run.episodeId) % benign.length]!,
              truth: 'benign',
              original: run.original,
              cleaned: true,
            }
          : {
              episodeId: run.episodeId,
              trace: run.original,
              truth: run.truth,
              original: run.original,
              cleaned,
            };
      const next = this.#o.next;
      if (next) next.#admit(file, () => this.#episodeFinished());
      else this.#startStage(file.episodeId, 2, file.trace, file.truth, file.original, file.cleaned);
    } else if (run.finished) {
      this.stats.episodesCompleted++;
      run.finished();
    } else this.#episodeFinished();
    this.#wake?.();
  }

  #telemetry(run: StageRun, e: TelemetryEvent): WireEvent {
    if (this.#o.measureLatency)
      this.#sentAt.set(`${run.episodeId}/${run.stage}/${run.next}`, performance.now());
    return {
      telemetry: {
        sandboxId: this.name,
        episodeId: run.episodeId,
        stage: run.stage,
        seq: run.next,
        timestampMs: Date.now(),
        event: e,
        encoded: run.encoded[run.next],
      },
    };
  }

  /** Real-time pacing: whether the run's next event is due by its recorded timestamp. */
  #due(run: StageRun): boolean {
    const realTime = this.#o.realTime;
    if (!realTime) return true;
    const events = run.trace.events;
    const offset = (events[run.next]!.timestamp - events[0]!.timestamp) / realTime.speed;
    return Date.now() - run.startedAt >= offset;
  }

  /**
   * A new Watch: what the receiver says it accepted (resume_after, "episode/stage" → last seq)
   * decides what is sent again. On the very first Watch every open stage is still at its start,
   * its episode-started pending: nothing is sent again. A Warden that restarted names the stages
   * it left open (runtime.resumeDir), or nothing without it: then its open stages start again from
   * their episode-started.
   */
  #resume(resumeAfter: Readonly<Record<string, number>>, started: ReadonlySet<string>): void {
    // Queued and not yet written: not lost (the same objects as in the runs and #outcomes).
    const pending = new Set<WireEvent>(this.#pending);
    const resent = this.stats.eventsResent;
    for (const run of this.#runs.values()) {
      // Named in started: its start arrived, none of its telemetry (seq numbers start at 0 here).
      const last = resumeAfter[run.key] ?? (started.has(run.key) ? -1 : undefined);
      if (last !== undefined) {
        if (run.next > last + 1) {
          this.stats.eventsResent += run.next - (last + 1);
          run.next = last + 1;
          run.sentAllAt = undefined;
        }
      } else if (!pending.has(run.start)) {
        // Nothing of it accepted: from the start (its episode-started may be what was lost).
        this.stats.eventsResent += run.next;
        run.next = 0;
        run.sentAllAt = undefined;
        this.#pending.unshift(run.start);
        this.stats.lifecycleResent++;
      }
    }
    const named = [...Object.keys(resumeAfter), ...started];
    for (const key of named) {
      const outcome = this.#outcomes.get(key);
      if (outcome && !this.#runs.has(key) && !pending.has(outcome)) {
        this.#pending.push(outcome);
        this.stats.lifecycleResent++;
      }
    }
    if (this.stats.eventsResent > resent || named.length > 0)
      this.#o.log.info(
        {
          sandbox: this.name,
          stages: named.length,
          eventsAgain: this.stats.eventsResent - resent,
        },
        'watch resumed',
      );
  }

  async #watch(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
    this.stats.watches++;
    this.#batchesThisStream = 0;
    const request = call.request as
      | { resumeAfter?: Record<string, number | string>; started?: unknown[]; maxBatch?: unknown }
      | undefined;
    // The receiver's max_batch (0 or absent: this sandbox's own batch size).
    const asked = Number(request?.maxBatch ?? 0);
    const batchSize =
      Number.isSafeInteger(asked) && asked > 0
        ? Math.min(this.#o.batchSize, asked)
        : this.#o.batchSize;
    const resumeAfter: Record<string, number> = {};
    for (const [k, v] of Object.entries(request?.resumeAfter ?? {})) {
      const n = Number(v);
      if (Number.isSafeInteger(n) && n >= 0) resumeAfter[k] = n;
    }
    const startedOnly = new Set(
      (Array.isArray(request?.started) ? request.started : []).filter(
        (k): k is string => typeof k === 'string',
      ),
    );
    this.#resume(resumeAfter, startedOnly);
    let closed = false;
    call.on('cancelled', () => {
      closed = true;
      this.#wake?.();
    });
    call.on('error', () => {
      closed = true;
    });
    const started = Date.now();
    let sent = 0;
    let wroteAt = performance.now();
    while (!closed && !this.#stopped) {
      // Idle (or paused) this long: an empty batch tells Warden the stream is alive.
      if (performance.now() - wroteAt >= this.#o.heartbeatMs) {
        call.write(encodeEventBatch([]));
        wroteAt = performance.now();
        this.stats.heartbeats++;
      }
      if (this.#paused) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      // At a fixed rate, the events due by now (a sandbox streams them as they happen; a full
      // batch at once would make the last event of each burst wait for the 31 before it).
      const rate = this.#o.eventsPerSecond;
      const limit = rate
        ? Math.min(batchSize, Math.floor(((Date.now() - started) / 1000) * rate) - sent)
        : batchSize;
      if (limit < 1) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const batch: WireEvent[] = this.#pending.splice(0, batchSize);
      const runs = [...this.#runs.values()];
      let progressed = true;
      while (batch.length < batchSize && progressed) {
        progressed = false;
        for (const run of runs) {
          if (batch.length >= batchSize || batch.length >= limit) break;
          if (run.ended || run.next >= run.trace.events.length) continue;
          if (!this.#due(run)) continue;
          batch.push(this.#telemetry(run, run.trace.events[run.next]!));
          run.next++;
          if (run.next >= run.trace.events.length) run.sentAllAt = Date.now();
          progressed = true;
        }
      }
      // Stages whose events are all out and that Warden left undecided end at the timeout.
      const now = Date.now();
      for (const run of runs) {
        if (
          !run.ended &&
          run.sentAllAt !== undefined &&
          now - run.sentAllAt > this.#o.stageTimeoutMs
        )
          this.#endStage(run, RELEASE, 'timeout after the last event');
      }
      if (batch.length === 0) {
        if (this.done) {
          call.end();
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, 20);
        });
        this.#wake = undefined;
        continue;
      }
      const events = batch.filter((b) => b.telemetry).length;
      this.stats.eventsSent += events;
      this.stats.lifecycleSent += batch.length - events;
      sent += events;
      this.stats.batchesSent++;
      const cut = this.#o.faults?.cutStreamAfterBatches;
      if (cut !== undefined && ++this.#batchesThisStream > cut) {
        // Fault: the batch is lost in the cut, as on a real one; the next Watch's resume_after
        // says what to send again.
        this.stats.eventsSent -= events;
        this.stats.lifecycleSent -= batch.length - events;
        this.stats.streamsCut++;
        // An 'error' ends the call with this status (grpc-js); destroy() would leave the client
        // waiting for a status that is never sent.
        call.emit('error', {
          code: grpc.status.UNAVAILABLE,
          details: 'fault injection: stream cut',
        });
        return;
      }
      wroteAt = performance.now();
      if (!call.write(encodeEventBatch(batch))) {
        this.stats.writesHeld++; // Warden reads no faster: gRPC flow control
        await new Promise((resolve) => call.once('drain', resolve));
      }
    }
  }

  /** Fault injection: how long to hold back the acks of this batch of actions (ms). */
  #delay(): number {
    const delay = this.#o.faults?.delayActs;
    if (delay === undefined || this.stats.actsDelayed >= delay.batches) return 0;
    this.stats.actsDelayed++;
    return delay.ms;
  }

  /** Fault injection: whether to refuse this Act call or stream message (UNAVAILABLE). */
  #refuse(): boolean {
    const refuse = this.#o.faults?.refuseActCalls;
    if (refuse === undefined || this.stats.actsRefused >= refuse) return false;
    this.stats.actsRefused++;
    return true;
  }

  #act(call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    if (this.#refuse()) {
      cb({ code: grpc.status.UNAVAILABLE, details: 'fault injection: actions refused' });
      return;
    }
    const actions = readActions(call.request);
    if (actions instanceof Error) {
      cb({ code: grpc.status.INVALID_ARGUMENT, details: actions.message });
      return;
    }
    const acks = this.#apply(actions);
    const delay = this.#delay();
    if (delay > 0) setTimeout(() => cb(null, { acks }), delay);
    else cb(null, { acks });
  }

  /** ActStream: one ack batch per action batch, in order (a refusal ends the stream). */
  #actStream(call: grpc.ServerDuplexStream<Buffer, unknown>): void {
    let ended = false;
    // Delayed ack batches still to go out on this stream, and the chain keeping them in order.
    let held = 0;
    let chain = Promise.resolve();
    call.on('data', (request: Buffer) => {
      if (ended) return; // batches already on their way when the stream was refused
      if (this.#refuse()) {
        ended = true;
        call.emit('error', {
          code: grpc.status.UNAVAILABLE,
          details: 'fault injection: actions refused',
        });
        return;
      }
      const actions = readActions(request);
      if (actions instanceof Error) {
        ended = true;
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: actions.message });
        return;
      }
      const acks = this.#apply(actions);
      // Acks answer batches in order: a delayed batch holds back the ones after it.
      const delay = this.#delay();
      const send = () => {
        if (!ended && !call.cancelled) call.write({ acks });
      };
      if (delay > 0 || held > 0) {
        held++;
        chain = chain.then(
          () =>
            new Promise<void>((resolve) =>
              setTimeout(() => {
                held--;
                send();
                resolve();
              }, delay),
            ),
        );
      } else send();
    });
    call.on('end', () => call.end());
    call.on('error', () => undefined); // the client went away; nothing is waiting for acks
  }

  #apply(actions: readonly ActionRequestRead[]): ActionAckWire[] {
    this.stats.actionBatches++;
    const acks: ActionAckWire[] = [];
    for (const a of actions) {
      this.stats.actionsReceived++;
      const c = a.context;
      const complete =
        c !== undefined &&
        typeof c.modelVersion === 'string' &&
        c.modelVersion !== '' &&
        c.qValueCount === 6 &&
        typeof c.confidence === 'number' &&
        c.confidence >= 0 &&
        c.confidence <= 1 &&
        c.source !== undefined &&
        SOURCES.has(c.source);
      if (!complete) this.stats.actionsWithoutContext++;
      if (this.#o.measureLatency) {
        const k = `${a.episodeId}/${a.stage}/${a.seq ?? 0}`;
        const sent = this.#sentAt.get(k);
        if (sent !== undefined) {
          this.latencies.push(performance.now() - sent);
          this.#sentAt.delete(k);
        }
      }
      const actionId = a.actionId ?? ''; // proto3: an absent string is the empty one
      const seen = this.#seenActions.get(actionId);
      if (seen) {
        acks.push(seen); // a retried action is applied once
        continue;
      }
      const run = this.#runs.get(`${a.episodeId}/${a.stage}`);
      let ack: ActionAckWire;
      if (!run || run.ended) {
        ack = {
          actionId,
          confirmed: true,
          applied: false,
          stageEnded: true,
          detail: 'stage already ended',
          timestampMs: Date.now(),
        };
      } else {
        this.stats.actionsApplied++;
        const action = (a.action ?? 0) as ActionId;
        const ends = STAGE_ENDING_ACTIONS.includes(action);
        const last = (a.seq ?? 0) >= run.trace.events.length - 1;
        if (ends) this.#endStage(run, action, 'action');
        else if (last) this.#endStage(run, RELEASE, 'run reached its end');
        ack = {
          actionId,
          confirmed: true,
          applied: true,
          stageEnded: ends || last,
          detail: ends ? 'stage ended' : last ? 'released at the end of the run' : 'applied',
          timestampMs: Date.now(),
        };
      }
      this.#seenActions.set(actionId, ack);
      if (this.#seenActions.size > 100_000) this.#seenActions.shift();
      acks.push(ack);
    }
    return acks;
  }
}
