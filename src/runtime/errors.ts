// Warden's error classes: one per stable code, each with an optional cause (after undici's errors).
// Across threads errors travel as SerializedError and are recognised by `code`, never instanceof.

import type { SerializedError } from '../messages/control.ts';

export class WardenError extends Error {
  readonly code: string = 'WARDEN_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Untrusted input (telemetry, RPC payload, file) that cannot be turned into a message. */
export class InvalidInputError extends WardenError {
  override readonly code = 'WARDEN_INVALID_INPUT';
}

/** Input larger or deeper than the configured limits. */
export class InputTooLargeError extends WardenError {
  override readonly code = 'WARDEN_INPUT_TOO_LARGE';
}

/** A configuration file that cannot be read or parsed at all (field errors fall back instead). */
export class ConfigError extends WardenError {
  override readonly code = 'WARDEN_CONFIG';
}

/** The database cannot be reached or used at start (the message says where, never with what password). */
export class DatabaseError extends WardenError {
  override readonly code = 'WARDEN_DATABASE';
}

/** A worker could not be spawned or did not answer READY. */
export class WorkerSpawnError extends WardenError {
  override readonly code = 'WARDEN_WORKER_SPAWN';
}

/** A worker exited without being asked to. */
export class WorkerExitError extends WardenError {
  override readonly code = 'WARDEN_WORKER_EXIT';
}

/** An actor's handler threw. */
export class ActorFailureError extends WardenError {
  override readonly code = 'WARDEN_ACTOR_FAILURE';
}

/** An actor crashed more often than the supervision policy allows; the supervisor gave up. */
export class CrashLoopError extends WardenError {
  override readonly code = 'WARDEN_CRASH_LOOP';
}

/** A shared-memory structure was given a layout it cannot hold. */
export class LayoutError extends WardenError {
  override readonly code = 'WARDEN_LAYOUT';
}

/** A call that did not answer within its deadline. */
export class TimeoutError extends WardenError {
  override readonly code = 'WARDEN_TIMEOUT';
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      code: typeof code === 'string' ? code : 'WARDEN_UNEXPECTED',
      message: error.message,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { code: 'WARDEN_UNEXPECTED', message: String(error) };
}

/** Rebuilds an Error on this side of a thread boundary, keeping code and the remote stack. */
export function deserializeError(data: SerializedError): Error & { code: string } {
  const error = new Error(data.message) as Error & { code: string };
  error.code = data.code;
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}

/** A channel that would carry data in plaintext off loopback, or TLS files that cannot be used. */
export class InsecureChannelError extends WardenError {
  override readonly code = 'WARDEN_INSECURE_CHANNEL';
}

/** Model bytes that are not a usable Warden policy (malformed protobuf, inconsistent shapes). */
export class InvalidModelError extends WardenError {
  override readonly code = 'WARDEN_INVALID_MODEL';
}
