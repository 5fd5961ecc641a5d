// The actor system: turns the configured placement into worker threads, wires them into a peer mesh
// (actor → actor envelopes go straight from worker to worker; host-protocol.ts), routes what
// still comes through main (SYSTEM, sends to a restarting thread), and is the one place the rest
// of the program starts, stops, configures and asks for stats.

import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { ACTOR_MODULES } from '../actors/index.ts';
import type { WardenConfig } from '../config/schema.ts';
import type { ActorStats } from '../messages/control.ts';
import { type MailboxOf, type Message, SYSTEM } from './actor.ts';
import type { CrashLoopError } from './errors.ts';
import type { ActorPlacement, Envelope, ThreadLoad } from './host-protocol.ts';
import { componentLogger, type Logger } from './logger.ts';
import { Repeats } from './repeats.ts';
import { openResume, sealResume } from './resume.ts';
import { BacklogCounts } from './shared/backlog.ts';
import { IntakeCounts } from './shared/intake.ts';
import { threadLoad } from './thread-load.ts';
import { ThreadSupervisor } from './thread-supervisor.ts';
import { TraceHub } from './tracing.ts';

/** Upstream to downstream: the order threads are stopped in (by the first of their actors). */
export const SHUTDOWN_ORDER = [
  'receiver',
  'adapter',
  'dispatcher',
  'episodes',
  'learner',
  'db-writer',
] as const satisfies readonly string[];

export interface ActorSystemOptions {
  readonly config: WardenConfig;
  /** Actor name → module URL; defaults to src/actors/index.ts. */
  readonly modules?: Readonly<Record<string, string>>;
  readonly shared?: Readonly<Record<string, SharedArrayBuffer>>;
  readonly log?: Logger;
  readonly spawnTimeoutMs?: number;
  /** Where spans go (runtime/tracing.ts); tracing is off without one. */
  readonly traceExporter?: SpanExporter;
}

export interface SystemStats {
  readonly threads: readonly {
    readonly thread: string;
    readonly actors: readonly ActorStats[];
    /** Event-loop and CPU time since the worker (re)started: where the time goes, by thread. */
    readonly load?: ThreadLoad;
  }[];
  /** The main thread's load (gRPC services, metrics, messages to SYSTEM). */
  readonly mainLoad: ThreadLoad;
  readonly deadLetters: number;
  /** Actor → actor envelopes main had to route (a peer was restarting); the rest went direct. */
  readonly routedByMain: number;
  readonly workerRestarts: number;
  readonly failedActors: readonly string[];
}

export interface ActorSystemEvents {
  /** A message an actor addressed to SYSTEM. */
  message: [{ from: string; message: Message }];
  'actor-restarted': [{ actor: string; thread: string; attempt: number; error: Error }];
  'actor-failed': [{ actor: string; thread: string; error: CrashLoopError }];
  'worker-restarted': [{ thread: string; attempt: number; error: Error }];
}

export class ActorSystem extends EventEmitter<ActorSystemEvents> {
  readonly #supervisors = new Map<string, ThreadSupervisor>();
  readonly #routes: Record<string, string> = {};
  readonly #log: Logger;
  #config: WardenConfig;
  #deadLetters = 0;
  readonly #backlog: BacklogCounts;
  readonly #undelivered = new Map<string, Repeats>();
  #routedByMain = 0;
  readonly #failed = new Set<string>();
  /** The configuration change being applied (configure runs them one at a time). */
  #configuring: Promise<void> = Promise.resolve();
  /** Whether start() finished: only then may a stop leave its open stages to the next start. */
  #started = false;
  /** The receiver actor's module, for sandboxes added while the system runs. */
  readonly #receiverModule: string | undefined;
  readonly #traces: TraceHub | undefined;
  /** Placed actors with no module yet: named once at start. */
  readonly skipped: readonly string[];

  constructor(options: ActorSystemOptions) {
    super();
    this.#config = options.config;
    this.#traces = options.traceExporter ? new TraceHub(options.traceExporter) : undefined;
    this.#log = options.log ?? componentLogger('runtime');
    this.#log.level = options.config.logging.level;
    const modules = options.modules ?? ACTOR_MODULES;
    const skipped: string[] = [];
    const placements = new Map<string, ActorPlacement[]>();
    for (const [thread, placed] of Object.entries(options.config.runtime.placement)) {
      // "receiver" stands for one receiver per configured sandbox: receiver:<sandbox name>.
      const actors = placed.flatMap((name) =>
        name === 'receiver' ? options.config.sandboxes.map((s) => `receiver:${s.name}`) : [name],
      );
      for (const name of actors) {
        // "receiver:sandbox-1" is an instance of the "receiver" actor.
        const module = modules[name] ?? modules[name.split(':')[0]!];
        if (module === undefined) {
          skipped.push(name);
          continue;
        }
        this.#routes[name] = thread;
        placements.set(thread, [...(placements.get(thread) ?? []), { name, module }]);
      }
    }
    this.skipped = skipped;
    this.#receiverModule = modules.receiver;
    // Messages pending per actor (receiver backpressure for the actors after the adapter).
    const counted = Object.keys(this.#routes);
    this.#backlog = new BacklogCounts(counted);
    const shared = {
      // Telemetry in flight from each receiver to the adapter (receiver backpressure).
      intake: new IntakeCounts().buffer,
      backlog: this.#backlog.buffer,
      ...options.shared,
    };
    // The initial mesh: one channel per pair of threads, handed out at their first start.
    const threads = [...placements.keys()];
    const mesh = new Map<string, Record<string, MessagePort>>(threads.map((t) => [t, {}]));
    for (const [i, a] of threads.entries()) {
      for (const b of threads.slice(i + 1)) {
        const { port1, port2 } = new MessageChannel();
        mesh.get(a)![b] = port1;
        mesh.get(b)![a] = port2;
      }
    }
    for (const [thread, actors] of placements) {
      const supervisor = new ThreadSupervisor(
        {
          thread,
          actors,
          routes: this.#routes,
          counted,
          shared,
          log: this.#log,
          spawnTimeoutMs: options.spawnTimeoutMs ?? 30_000,
          tracing: this.#traces !== undefined,
          peers: (restart) => (restart ? this.#connect(thread) : mesh.get(thread)!),
        },
        this.#config,
      );
      supervisor.on('envelope', (e) => this.#route(e));
      supervisor.on('fence', ({ from, to }) => this.#supervisors.get(to)?.fence(from));
      supervisor.on('down', () => {
        for (const s of this.#supervisors.values()) if (s !== supervisor) s.peerDown(thread);
      });
      supervisor.on('spans', (spans) => this.#traces?.receive(spans));
      supervisor.on('dead-letter', ({ to, reason }) => this.#deadLetter(to, reason));
      supervisor.on('actor-restarted', (e) => this.emit('actor-restarted', e));
      supervisor.on('worker-restarted', (e) => this.emit('worker-restarted', e));
      supervisor.on('actor-failed', (e) => {
        this.#failed.add(e.actor);
        this.emit('actor-failed', e);
      });
      this.#supervisors.set(thread, supervisor);
    }
  }

  get config(): WardenConfig {
    return this.#config;
  }

  /** Thread name → actors it runs (after leaving out actors that are not built). */
  get placement(): Readonly<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const [actor, thread] of Object.entries(this.#routes)) {
      out[thread] = [...(out[thread] ?? []), actor];
    }
    return out;
  }

  async start(): Promise<void> {
    for (const name of this.skipped) {
      this.#log.info({ actor: name }, `actor "${name}" is placed but not built yet; left out`);
    }
    // What the last stop left of the open stages, before any actor takes its part (resume.ts).
    openResume(this.#config, this.#log);
    try {
      await Promise.all([...this.#supervisors.values()].map((s) => s.start()));
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.#started = true;
    this.#log.info({ placement: this.placement }, 'actor system started');
  }

  send<K extends string>(to: K, message: MailboxOf<K>): void {
    this.#backlog.sent(to);
    this.#route({ kind: 'deliver', from: SYSTEM, to, message });
  }

  /** The OS-level thread id running an actor (diagnostics and tests). */
  threadIdOf(actor: string): number | undefined {
    const thread = this.#routes[actor];
    return thread === undefined ? undefined : this.#supervisors.get(thread)?.threadId;
  }

  /** Fresh channels from a restarting thread to every live thread; each peer gets its end. */
  #connect(thread: string): Record<string, MessagePort> {
    const ports: Record<string, MessagePort> = {};
    for (const s of this.#supervisors.values()) {
      if (s.thread === thread || !s.alive) continue;
      const { port1, port2 } = new MessageChannel();
      ports[s.thread] = port1;
      s.peerUp(thread, port2);
    }
    return ports;
  }

  /**
   * Counted each; logged once per recipient and reason, then at most every 10 s with how many
   * (a full mailbox under a flood logged 1.1 million lines in two minutes).
   */
  #deadLetter(to: string, reason: string): void {
    this.#deadLetters++;
    this.#backlog.settled(this.#backlog.slotOf(to));
    const key = `${to}\u0000${reason}`;
    const repeats = this.#undelivered.get(key) ?? new Repeats();
    this.#undelivered.set(key, repeats);
    const repeated = repeats.note(1);
    if (repeated) this.#log.warn({ to, reason, times: repeated.times }, 'message not delivered');
  }

  #route(envelope: Envelope): void {
    if (envelope.to === SYSTEM) {
      this.emit('message', { from: envelope.from, message: envelope.message });
      return;
    }
    const thread = this.#routes[envelope.to];
    const supervisor = thread === undefined ? undefined : this.#supervisors.get(thread);
    if (!supervisor) {
      this.#deadLetter(envelope.to, 'unknown-actor');
      return;
    }
    if (envelope.from !== SYSTEM) this.#routedByMain++;
    supervisor.deliver(envelope);
  }

  async stats(): Promise<SystemStats> {
    const threads = await Promise.all(
      [...this.#supervisors.values()].map(async (s) => {
        const [actors, load] = await Promise.all([s.stats(), s.load().catch(() => undefined)]);
        // Read here, not by the actor's thread: fresh even while that thread is too busy to answer.
        const withPending = actors.map((a) => ({ ...a, pending: this.#backlog.pending(a.actor) }));
        return { thread: s.thread, actors: withPending, ...(load ? { load } : {}) };
      }),
    );
    return {
      threads,
      mainLoad: threadLoad(),
      deadLetters: this.#deadLetters,
      routedByMain: this.#routedByMain,
      workerRestarts: [...this.#supervisors.values()].reduce((n, s) => n + s.workerRestarts, 0),
      failedActors: [...this.#failed],
    };
  }

  /**
   * Applies a new configuration to every actor. A receiver is placed for each sandbox added to
   * `sandboxes`, on the thread that places "receiver", after the others have the configuration
   * (the dispatcher its client); the receiver of a sandbox removed stops first.
   */
  configure(config: WardenConfig): Promise<void> {
    // One change at a time: a sandbox removed by one and added back by the next must not be
    // placed while its receiver is still stopping.
    const next = this.#configuring.then(() => this.#configure(config));
    this.#configuring = next.catch(() => undefined);
    return next;
  }

  async #configure(config: WardenConfig): Promise<void> {
    const wanted = new Set(config.sandboxes.map((s) => `receiver:${s.name}`));
    const placed = Object.keys(this.#routes).filter((a) => a.startsWith('receiver:'));
    for (const name of placed.filter((a) => !wanted.has(a))) {
      const supervisor = this.#supervisors.get(this.#routes[name]!);
      delete this.#routes[name];
      this.#failed.delete(name);
      await supervisor?.removeActor(name, config.runtime.shutdownTimeoutMs);
      this.#log.info(
        { actor: name },
        'sandbox removed from the configuration: its receiver stopped',
      );
    }
    this.#config = config;
    await Promise.all([...this.#supervisors.values()].map((s) => s.configure(config)));
    const thread = Object.entries(config.runtime.placement).find(
      ([t, actors]) => actors.includes('receiver') && this.#supervisors.has(t),
    )?.[0];
    const added = [...wanted].filter((a) => !placed.includes(a));
    if (added.length === 0) return;
    if (thread === undefined || this.#receiverModule === undefined) {
      this.#log.warn(
        { actors: added },
        'sandboxes added, but no running thread places "receiver" (runtime.placement): restart Warden to start their receivers',
      );
      return;
    }
    for (const name of added) {
      this.#routes[name] = thread;
      await this.#supervisors.get(thread)!.addActor({ name, module: this.#receiverModule });
      this.#log.info(
        { actor: name, thread },
        'sandbox added to the configuration: its receiver started',
      );
    }
  }

  /**
   * Stops actors in pipeline order — sources first, sinks last — and then the threads, in the same
   * order. Actor by actor, not thread by thread: the receivers stop before the dispatcher that
   * shares their thread, so decisions still on their way reach it and get their acks, and what an
   * actor flushes while stopping (the episodes actor's open episodes) still reaches a running DB
   * writer. Actors outside SHUTDOWN_ORDER (feeds, the registry) stop first. A stop hook that does
   * not finish within shutdownTimeoutMs is left behind, and its thread terminated at the end.
   */
  async stop(): Promise<void> {
    const timeout = this.#config.runtime.shutdownTimeoutMs;
    const rankOf = (actor: string) =>
      (SHUTDOWN_ORDER as readonly string[]).indexOf(actor.split(':')[0]!); // −1: first
    const actors = Object.entries(this.#routes);
    let inTime = this.#started;
    for (const rank of [...new Set(actors.map(([a]) => rankOf(a)))].sort((a, b) => a - b)) {
      const byThread = new Map<string, string[]>();
      for (const [actor, thread] of actors)
        if (rankOf(actor) === rank) byThread.set(thread, [...(byThread.get(thread) ?? []), actor]);
      const stopped = await Promise.all(
        [...byThread].map(([thread, names]) =>
          this.#supervisors.get(thread)!.stopActors(names, timeout),
        ),
      );
      if (stopped.includes(false)) inTime = false;
    }
    // Every actor wrote its part of the open stages: the next start may take them up.
    if (inTime) sealResume(this.#config);
    const threadRank = (s: ThreadSupervisor) =>
      Math.min(...actors.filter(([, t]) => t === s.thread).map(([a]) => rankOf(a)));
    const groups = new Map<number, ThreadSupervisor[]>();
    for (const s of this.#supervisors.values()) {
      const rank = threadRank(s);
      groups.set(rank, [...(groups.get(rank) ?? []), s]);
    }
    for (const rank of [...groups.keys()].sort((a, b) => a - b)) {
      await Promise.all(groups.get(rank)!.map((s) => s.stop(timeout)));
    }
    await this.#traces?.shutdown();
    this.#log.info('actor system stopped');
  }
}
