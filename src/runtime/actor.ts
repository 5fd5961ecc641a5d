// How an actor is defined: state, a handler for its message union, optional configure/stats/stop.
// The definition is pure data + functions; the runtime decides which thread runs it (placement).

import type { Tracer } from '@opentelemetry/api';
import type { WardenConfig } from '../config/schema.ts';
import type { Logger } from './logger.ts';
import type { BacklogCounts } from './shared/backlog.ts';

/** Every actor message is a discriminated union on `type`. */
export interface Message {
  readonly type: string;
}

/**
 * Names of actors and the messages their mailboxes accept. Actor modules add their entry by
 * declaration merging (`declare module '../../runtime/actor.ts' { interface Mailboxes { … } }`).
 */
export interface Mailboxes {
  /** The main thread: outputs and announcements any actor may send (ActorSystem 'message' event). */
  system: Message;
}

export type MailboxOf<K extends string> = K extends keyof Mailboxes
  ? Mailboxes[K]
  : Message & Readonly<Record<string, unknown>>;

/** The address of the main thread's system object; messages sent there reach ActorSystem listeners. */
export const SYSTEM = 'system' as const;

export interface ActorContext {
  readonly name: string;
  readonly thread: string;
  readonly log: Logger;
  /** The configuration in force; replaced (not mutated) on hot reload. */
  readonly config: WardenConfig;
  /** Shared buffers handed to every thread by name (rings, replay storage). */
  readonly shared: Readonly<Record<string, SharedArrayBuffer>>;
  /** Sends to another actor (or SYSTEM); delivery is in order per sender → receiver. */
  send<K extends string>(to: K, message: MailboxOf<K>): void;
  /** Records spans (runtime/tracing.ts); the no-op tracer when tracing is off. */
  readonly tracer: Tracer;
  /** Messages pending per actor (shared/backlog.ts); absent where no system counts them. */
  readonly backlog?: BacklogCounts;
}

export interface ActorDefinition<M extends Message = Message, S = unknown> {
  readonly name: string;
  init(ctx: ActorContext): S | Promise<S>;
  handle(state: S, message: M, ctx: ActorContext): S | Promise<S>;
  /** Applies a hot-reloaded configuration; fields marked restart-only never arrive changed. */
  configure?(state: S, config: WardenConfig, ctx: ActorContext): S | Promise<S>;
  stats?(state: S): Record<string, number>;
  stop?(state: S, ctx: ActorContext): void | Promise<void>;
}

export function defineActor<M extends Message, S>(
  definition: ActorDefinition<M, S>,
): ActorDefinition<M, S> {
  return definition;
}

/** Exhaustiveness check for `switch (message.type)`. */
export function assertNever(value: never): never {
  throw new Error(`unhandled message: ${JSON.stringify(value)}`);
}
