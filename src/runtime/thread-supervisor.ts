// Main-thread side of one worker thread: spawns it (READY handshake), forwards envelopes to it,
// restarts crashed actors or the whole worker with backoff, and stops it politely
// (ask, wait shutdownTimeoutMs, then terminate).

import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { type Remote, releaseProxy, wrap } from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { WardenConfig } from '../config/schema.ts';
import type { ActorStats } from '../messages/control.ts';
import {
  CrashLoopError,
  deserializeError,
  TimeoutError,
  WorkerExitError,
  WorkerSpawnError,
} from './errors.ts';
import type {
  ActorPlacement,
  Envelope,
  HostControl,
  HostInit,
  HostToMain,
  MainToHost,
  ThreadLoad,
} from './host-protocol.ts';
import type { Logger } from './logger.ts';
import { RestartPolicy } from './restart-policy.ts';
import { spawnWorker } from './spawn.ts';
import type { WireSpan } from './tracing.ts';

const HOST = new URL(
  `./worker-host${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

export interface ThreadSupervisorEvents {
  envelope: [Envelope];
  /** The worker sent its last envelope for thread `to` through main (host-protocol.ts). */
  fence: [{ from: string; to: string }];
  /** The worker exited (not on stop): its peers must send through main until it is back. */
  down: [];
  'dead-letter': [{ to: string; reason: string }];
  'actor-restarted': [{ actor: string; thread: string; attempt: number; error: Error }];
  'actor-failed': [{ actor: string; thread: string; error: CrashLoopError }];
  'worker-restarted': [{ thread: string; attempt: number; error: Error }];
  spans: [readonly WireSpan[]];
}

export interface ThreadSupervisorOptions {
  readonly thread: string;
  readonly actors: readonly ActorPlacement[];
  readonly routes: Readonly<Record<string, string>>;
  /** The actors with a backlog count (HostInit.counted). */
  readonly counted: readonly string[];
  readonly shared: Readonly<Record<string, SharedArrayBuffer>>;
  readonly log: Logger;
  readonly spawnTimeoutMs: number;
  readonly tracing?: boolean;
  /**
   * This thread's ends of the peer mesh for a worker about to start: the first start gets the
   * system's initial mesh, a restart fresh channels to the live threads (host-protocol.ts).
   */
  readonly peers?: (restart: boolean) => Record<string, MessagePort>;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ThreadSupervisor extends EventEmitter<ThreadSupervisorEvents> {
  readonly thread: string;
  #opts: ThreadSupervisorOptions;
  #config: WardenConfig;
  #worker: Worker | undefined;
  #data: MessagePort | undefined;
  #control: Remote<HostControl> | undefined;
  #ready = false;
  /** The figures the running worker last answered with (reset when it restarts). */
  #lastStats: { at: number; stats: ActorStats[] } | undefined;
  #startedAt = Date.now();
  #alive = false;
  #starts = 0;
  #stopping = false;
  #gaveUp = false;
  /** Envelopes (and fences) waiting while the worker (re)starts; bounded by the mailbox capacity. */
  #outbox: MainToHost[] = [];
  readonly #workerPolicy: RestartPolicy;
  readonly #actorPolicies = new Map<string, RestartPolicy>();
  readonly #failedActors = new Set<string>();
  /** The actors placed here now: those at the start, and those added or removed since. */
  #actors: ActorPlacement[];

  constructor(options: ThreadSupervisorOptions, config: WardenConfig) {
    super();
    this.thread = options.thread;
    this.#opts = options;
    this.#config = config;
    this.#actors = [...options.actors];
    this.#workerPolicy = new RestartPolicy(config.runtime.supervision);
    for (const a of options.actors)
      this.#actorPolicies.set(a.name, new RestartPolicy(config.runtime.supervision));
  }

  /**
   * Places an actor here while the system runs (a sandbox added): started now in the running
   * worker, or with the others when a restarting one comes back.
   */
  async addActor(placement: ActorPlacement): Promise<void> {
    if (this.#actors.some((a) => a.name === placement.name)) return;
    this.#actors.push(placement);
    this.#actorPolicies.set(placement.name, new RestartPolicy(this.#config.runtime.supervision));
    this.#failedActors.delete(placement.name);
    if (this.#ready && this.#control)
      await withTimeout(
        this.#control.addActor(placement),
        this.#opts.spawnTimeoutMs,
        `start of ${placement.name} in "${this.thread}"`,
      );
  }

  /** Stops an actor here and forgets it (a sandbox removed); gives up waiting after timeoutMs. */
  async removeActor(name: string, timeoutMs: number): Promise<void> {
    this.#actors = this.#actors.filter((a) => a.name !== name);
    this.#actorPolicies.delete(name);
    this.#failedActors.delete(name);
    this.#outbox = this.#outbox.filter((m) => m.kind !== 'deliver' || m.to !== name);
    if (!this.#ready || !this.#control) return;
    try {
      await withTimeout(
        this.#control.removeActor(name),
        timeoutMs,
        `stop of ${name} in "${this.thread}"`,
      );
    } catch (error) {
      this.#opts.log.warn(
        { err: error, thread: this.thread, actor: name },
        'actor did not stop in time',
      );
    }
  }

  get ready(): boolean {
    return this.#ready;
  }

  get workerRestarts(): number {
    return this.#workerPolicy.restarts;
  }

  get threadId(): number | undefined {
    return this.#worker?.threadId;
  }

  /** Whether a worker is running or starting (so a peer port handed to it will be read). */
  get alive(): boolean {
    return this.#alive && !this.#stopping;
  }

  async start(): Promise<void> {
    const data = new MessageChannel();
    const control = new MessageChannel();
    const restart = this.#starts++ > 0;
    const peers = this.#opts.peers?.(restart) ?? {};
    const init: HostInit = {
      thread: this.thread,
      actors: this.#actors,
      config: this.#config,
      shared: this.#opts.shared,
      routes: this.#opts.routes,
      counted: this.#opts.counted,
      dataPort: data.port2,
      controlPort: control.port2,
      peers,
      awaitFences: restart,
      tracing: this.#opts.tracing === true,
    };
    const worker = spawnWorker(HOST, init, `warden:${this.thread}`, [
      data.port2,
      control.port2,
      ...Object.values(peers),
    ]);
    this.#worker = worker;
    this.#alive = true;
    worker.once('exit', () => {
      if (worker !== this.#worker) return;
      this.#alive = false;
      // Fences still held were for this worker's ports; the next start gets new ones.
      this.#outbox = this.#outbox.filter((m) => m.kind !== 'fence');
      if (!this.#stopping) this.emit('down');
    });
    this.#data = data.port1;
    this.#control = wrap<HostControl>(nodeEndpoint(control.port1));
    this.#ready = false;
    this.#lastStats = undefined;
    this.#startedAt = Date.now();

    const ready = new Promise<void>((resolve, reject) => {
      const onEarlyExit = (code: number) =>
        reject(
          new WorkerSpawnError(`worker "${this.thread}" exited with code ${code} before READY`),
        );
      const onEarlyError = (error: Error) =>
        reject(
          new WorkerSpawnError(`worker "${this.thread}" failed to start: ${error.message}`, {
            cause: error,
          }),
        );
      worker.once('exit', onEarlyExit);
      worker.once('error', onEarlyError);
      data.port1.on('message', (m: HostToMain) => {
        if (m.kind === 'ready') {
          worker.off('exit', onEarlyExit);
          worker.off('error', onEarlyError);
          resolve();
        }
        this.#onHostMessage(m);
      });
    });
    await withTimeout(ready, this.#opts.spawnTimeoutMs, `worker "${this.thread}" READY`).catch(
      async (e) => {
        await worker.terminate();
        throw e instanceof WorkerSpawnError
          ? e
          : new WorkerSpawnError(String(e.message), { cause: e });
      },
    );
    this.#ready = true;
    worker.on('error', (error) =>
      this.#opts.log.error({ err: error, thread: this.thread }, 'worker error'),
    );
    worker.once('exit', (code) => this.#onExit(worker, code));
    const pending = this.#outbox;
    this.#outbox = [];
    for (const e of pending) {
      if (e.kind === 'deliver') this.deliver(e);
      else this.#post(e);
    }
  }

  deliver(envelope: Envelope): void {
    if (this.#failedActors.has(envelope.to)) {
      this.emit('dead-letter', { to: envelope.to, reason: 'actor-failed' });
      return;
    }
    this.#post(envelope);
  }

  /** Hands a live peer this thread's end of a new channel to `thread` (host-protocol.ts). */
  peerUp(thread: string, port: MessagePort): void {
    if (!this.alive || !this.#data) {
      port.close();
      return;
    }
    this.#data.postMessage({ kind: 'peer-up', thread, port } satisfies MainToHost, [port]);
  }

  peerDown(thread: string): void {
    if (this.alive) this.#data?.postMessage({ kind: 'peer-down', thread } satisfies MainToHost);
  }

  /** A peer's fence, in order behind the envelopes it routed here through main. */
  fence(from: string): void {
    this.#post({ kind: 'fence', from, to: this.thread });
  }

  #post(message: MainToHost): void {
    if (this.#ready && this.#data) {
      this.#data.postMessage(message);
      return;
    }
    if (message.kind !== 'deliver') {
      if (!this.#gaveUp) this.#outbox.push(message);
      return;
    }
    const envelope = message;
    if (this.#gaveUp || this.#outbox.length >= this.#config.runtime.mailboxCapacity) {
      this.emit('dead-letter', {
        to: envelope.to,
        reason: this.#gaveUp ? 'actor-failed' : 'mailbox-full',
      });
      return;
    }
    this.#outbox.push(envelope);
  }

  async stats(): Promise<ActorStats[]> {
    const placeholder = (): ActorStats[] =>
      this.#actors.map((a) => ({
        actor: a.name,
        handled: 0,
        failed: 0,
        restarts: 0,
        mailboxDepth: this.#outbox.filter((e) => e.kind === 'deliver' && e.to === a.name).length,
        custom: {},
      }));
    let stats: ActorStats[];
    if (!this.#ready || !this.#control) stats = placeholder();
    else
      try {
        stats = await withTimeout(this.#control.stats(), 5_000, `stats of "${this.thread}"`);
        this.#lastStats = { at: Date.now(), stats };
      } catch (error) {
        // A thread busy for seconds (a data set loading, a model exporting) still shows in a
        // progress line or a metrics scrape: with the figures it last gave, marked stale.
        if (!(error instanceof TimeoutError)) throw error;
        const last = this.#lastStats ?? { at: this.#startedAt, stats: placeholder() };
        stats = last.stats.map((s) => ({ ...s, staleMs: Date.now() - last.at }));
      }
    // Restarts are counted here, where they are decided: a restarted worker starts from zero.
    return stats.map((s) => ({
      ...s,
      restarts: (this.#actorPolicies.get(s.actor)?.restarts ?? 0) + this.#workerPolicy.restarts,
    }));
  }

  /** The worker's event-loop load since it (re)started; undefined while it is not running. */
  async load(): Promise<ThreadLoad | undefined> {
    if (!this.#ready || !this.#control) return undefined;
    return withTimeout(this.#control.load(), 5_000, `load of "${this.thread}"`);
  }

  async configure(config: WardenConfig): Promise<void> {
    this.#config = config;
    this.#workerPolicy.options = config.runtime.supervision;
    for (const p of this.#actorPolicies.values()) p.options = config.runtime.supervision;
    if (this.#ready && this.#control) await this.#control.configure(config);
  }

  /** Runs these actors' stop hooks (the thread keeps running); gives up waiting after timeoutMs. */
  /** Stops these actors; false when they did not stop in time (or their thread was not up). */
  async stopActors(names: readonly string[], timeoutMs: number): Promise<boolean> {
    if (!this.#ready || !this.#control) return false;
    try {
      await withTimeout(
        this.#control.stopActors([...names]),
        timeoutMs,
        `stop of ${names.join(', ')} in "${this.thread}"`,
      );
      return true;
    } catch (error) {
      this.#opts.log.warn(
        { err: error, thread: this.thread, actors: names },
        'actors did not stop in time',
      );
      return false;
    }
  }

  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    const worker = this.#worker;
    if (!worker) return;
    if (this.#ready && this.#control) {
      try {
        await withTimeout(this.#control.stop(), timeoutMs, `stop of "${this.thread}"`);
      } catch (error) {
        this.#opts.log.warn(
          { err: error, thread: this.thread },
          'worker did not stop in time; terminating',
        );
      }
      this.#control[releaseProxy]();
    }
    this.#ready = false;
    this.#data?.close();
    await worker.terminate();
  }

  #onHostMessage(m: HostToMain): void {
    switch (m.kind) {
      case 'deliver':
        this.emit('envelope', m);
        break;
      case 'dead-letter':
        this.emit('dead-letter', { to: m.to, reason: m.reason });
        break;
      case 'crashed':
        void this.#onActorCrash(m.actor, deserializeError(m.error));
        break;
      case 'spans':
        this.emit('spans', m.spans);
        break;
      case 'fence':
        this.emit('fence', { from: m.from, to: m.to });
        break;
      case 'ready':
        break;
    }
  }

  async #onActorCrash(actor: string, error: Error): Promise<void> {
    const policy = this.#actorPolicies.get(actor);
    if (!policy || this.#stopping) return;
    const decision = policy.recordFailure(Date.now());
    if (decision.action === 'give-up') {
      this.#failedActors.add(actor);
      const failure = new CrashLoopError(
        `actor "${actor}" crashed ${decision.failures} times within ${this.#config.runtime.supervision.windowMs} ms; giving up`,
        { cause: error },
      );
      this.#opts.log.error({ err: failure, actor, thread: this.thread }, 'actor crash loop');
      const dropped = (await this.#control?.abandonActor(actor)) ?? 0;
      for (let i = 0; i < dropped; i++)
        this.emit('dead-letter', { to: actor, reason: 'actor-failed' });
      this.emit('actor-failed', { actor, thread: this.thread, error: failure });
      return;
    }
    this.#opts.log.warn(
      {
        err: error,
        actor,
        thread: this.thread,
        delayMs: decision.delayMs,
        attempt: decision.attempt,
      },
      'restarting crashed actor',
    );
    await new Promise((r) => setTimeout(r, decision.delayMs));
    if (this.#stopping || !this.#ready) return;
    await this.#control?.restartActor(actor);
    this.emit('actor-restarted', { actor, thread: this.thread, attempt: decision.attempt, error });
  }

  async #onExit(worker: Worker, code: number): Promise<void> {
    if (this.#stopping || worker !== this.#worker) return;
    this.#ready = false;
    this.#control?.[releaseProxy]();
    const error = new WorkerExitError(`worker "${this.thread}" exited with code ${code}`);
    const decision = this.#workerPolicy.recordFailure(Date.now());
    if (decision.action === 'give-up') {
      this.#gaveUp = true;
      const failure = new CrashLoopError(
        `worker "${this.thread}" exited ${decision.failures} times within ${this.#config.runtime.supervision.windowMs} ms; giving up`,
        { cause: error },
      );
      this.#opts.log.error({ err: failure, thread: this.thread }, 'worker crash loop');
      for (const a of this.#actors) {
        this.#failedActors.add(a.name);
        this.emit('actor-failed', { actor: a.name, thread: this.thread, error: failure });
      }
      for (const e of this.#outbox.splice(0))
        if (e.kind === 'deliver') this.emit('dead-letter', { to: e.to, reason: 'actor-failed' });
      return;
    }
    this.#opts.log.warn(
      { err: error, thread: this.thread, delayMs: decision.delayMs },
      'restarting worker',
    );
    await new Promise((r) => setTimeout(r, decision.delayMs));
    if (this.#stopping) return;
    try {
      await this.start();
      this.emit('worker-restarted', { thread: this.thread, attempt: decision.attempt, error });
    } catch (spawnError) {
      this.#opts.log.error({ err: spawnError, thread: this.thread }, 'worker restart failed');
      await this.#onExit(this.#worker!, -1);
    }
  }
}
