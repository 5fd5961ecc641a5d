// What the main thread and a worker host say to each other. Types only.
//
//   Two MessagePorts per worker to main, and one to every other worker:
//     data port     envelopes from and to main (SYSTEM, messages to a peer that is restarting),
//                   crash reports, READY, and the peer mesh's own messages below
//     control port  comlink RPC: HostControl below
//     peer ports    envelopes actor → actor straight from one worker to another (main is not on
//                   the hot path); one MessageChannel per pair of threads
//
//   The peer mesh: every thread gets a port to every other thread at start. When a worker exits,
//   its peers are told ('peer-down') and send to it through main, which holds the envelopes while
//   it restarts. The new worker gets fresh ports to the live threads, and each of them gets its end
//   ('peer-up'). A sender switches back to the direct port only after it has sent a 'fence' through
//   main, and the new worker reads that peer's port only after the fence has arrived: whatever the
//   sender routed through main is delivered first, so delivery stays in order per sender → receiver.
//
//   Lifecycle handshake: main spawns → host imports actor modules and runs init → host posts
//   'ready' → main delivers buffered envelopes. Stop: main calls control.stopActors() for the
//   actors in pipeline order (across threads), then control.stop() per thread, waits up to
//   shutdownTimeoutMs for each, then terminates the worker.

import type { MessagePort } from 'node:worker_threads';
import type { WardenConfig } from '../config/schema.ts';
import type { ActorStats, SerializedError } from '../messages/control.ts';
import type { Message } from './actor.ts';
import type { WireSpan } from './tracing.ts';

export interface ActorPlacement {
  readonly name: string;
  /** file: URL of the module whose default export is the ActorDefinition. */
  readonly module: string;
}

export interface HostInit {
  readonly thread: string;
  readonly actors: readonly ActorPlacement[];
  readonly config: WardenConfig;
  readonly shared: Readonly<Record<string, SharedArrayBuffer>>;
  /** Actor name → thread name, so the host knows which sends stay local. */
  readonly routes: Readonly<Record<string, string>>;
  /**
   * The actors with a count of messages pending (shared/backlog.ts): those placed at the system's
   * start, the same list in every thread, also in one restarted after actors came and went.
   */
  readonly counted: readonly string[];
  readonly dataPort: MessagePort;
  readonly controlPort: MessagePort;
  /** Thread name → this thread's end of the channel to that thread (the live threads only). */
  readonly peers: Readonly<Record<string, MessagePort>>;
  /** A restarted worker reads each peer port only after that peer's fence (see above). */
  readonly awaitFences: boolean;
  /** Whether actors here record spans (forwarded to main as 'spans'). */
  readonly tracing: boolean;
}

export interface Envelope {
  readonly kind: 'deliver';
  readonly from: string;
  readonly to: string;
  readonly message: Message;
}

export interface Ready {
  readonly kind: 'ready';
  readonly thread: string;
}

export interface Crashed {
  readonly kind: 'crashed';
  readonly actor: string;
  readonly error: SerializedError;
}

/** A message that could not be delivered and was counted, not silently lost. */
export interface DeadLetter {
  readonly kind: 'dead-letter';
  readonly to: string;
  readonly reason: 'mailbox-full' | 'unknown-actor' | 'actor-failed' | 'actor-stopped';
}

/** Finished spans of this thread's actors, for main's exporter. */
export interface Spans {
  readonly kind: 'spans';
  readonly spans: readonly WireSpan[];
}

/** A thread restarted: here is this thread's end of the new channel to it. */
export interface PeerUp {
  readonly kind: 'peer-up';
  readonly thread: string;
  readonly port: MessagePort;
}

/** A thread's worker exited: send to it through main until it is back. */
export interface PeerDown {
  readonly kind: 'peer-down';
  readonly thread: string;
}

/** Sent through main by `from` after its last envelope routed through main to thread `to`. */
export interface Fence {
  readonly kind: 'fence';
  readonly from: string;
  readonly to: string;
}

export type HostToMain = Envelope | Ready | Crashed | DeadLetter | Spans | Fence;
export type MainToHost = Envelope | PeerUp | PeerDown | Fence;

/**
 * How busy a thread has been since it started: its event loop (performance.eventLoopUtilization;
 * wall time, so it also counts time the thread was runnable but had no core) and, on Linux, the
 * CPU time the kernel charged to the thread itself (/proc/thread-self/stat).
 */
export interface ThreadLoad {
  readonly activeMs: number;
  readonly idleMs: number;
  readonly cpuMs?: number;
  /** The thread's scheduling priority (Linux nice value; runtime/thread-priority.ts). */
  readonly nice?: number;
  /** Whether the thread runs under Linux's SCHED_IDLE policy (runtime.backgroundIdle). */
  readonly idlePolicy?: boolean;
}

export interface HostControl {
  ping(): string;
  load(): ThreadLoad;
  configure(config: WardenConfig): Promise<void>;
  stats(): Promise<ActorStats[]>;
  /** Re-runs init for a crashed actor and resumes its mailbox. */
  restartActor(name: string): Promise<void>;
  /** Drops a crashed actor's mailbox after the supervisor gave up; returns how many were dropped. */
  abandonActor(name: string): number;
  /** Runs these actors' stop hooks; the thread and its other actors keep running. */
  stopActors(names: string[]): Promise<void>;
  /** Starts an actor here while the thread runs (a sandbox added to the configuration). */
  addActor(placement: ActorPlacement): Promise<void>;
  /** Stops an actor here and forgets it (a sandbox removed from the configuration). */
  removeActor(name: string): Promise<void>;
  stop(): Promise<void>;
}
