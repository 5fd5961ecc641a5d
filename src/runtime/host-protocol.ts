// What the main thread and a worker host say to each other. Types only.
//
//   Two MessagePorts per worker:
//     data port     envelopes (actor → actor through main, crash reports, READY)
//     control port  comlink RPC: HostControl below
//
//   Lifecycle handshake: main spawns → host imports actor modules and runs init → host posts
//   'ready' → main delivers buffered envelopes. Stop: main calls control.stop() (actors' stop
//   hooks run), waits up to shutdownTimeoutMs, then terminates the worker.

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
  readonly dataPort: MessagePort;
  readonly controlPort: MessagePort;
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

export type HostToMain = Envelope | Ready | Crashed | DeadLetter | Spans;
export type MainToHost = Envelope;

export interface HostControl {
  ping(): string;
  configure(config: WardenConfig): Promise<void>;
  stats(): Promise<ActorStats[]>;
  /** Re-runs init for a crashed actor and resumes its mailbox. */
  restartActor(name: string): Promise<void>;
  /** Drops a crashed actor's mailbox after the supervisor gave up; returns how many were dropped. */
  abandonActor(name: string): number;
  stop(): Promise<void>;
}
