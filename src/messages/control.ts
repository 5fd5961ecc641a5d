// Control-plane messages: what the runtime says to actors and actors report back (low rate).

export interface ActorStats {
  readonly actor: string;
  readonly handled: number;
  readonly failed: number;
  readonly restarts: number;
  readonly mailboxDepth: number;
  /**
   * Messages sent to the actor and not yet taken up: its mailbox and what still waits in the
   * channels between threads (runtime/shared/backlog.ts).
   */
  readonly pending?: number;
  readonly custom: Readonly<Record<string, number>>;
  /**
   * Set when the actor's thread did not answer in time (busy in one long piece of work, such as
   * loading a data set): these are its last answered figures, this many milliseconds old.
   */
  readonly staleMs?: number;
}

export interface ConfigChanged {
  readonly type: 'config-changed';
  /** Dotted paths of the fields whose value changed and were applied. */
  readonly applied: readonly string[];
  /** Changed fields that only take effect after a restart. */
  readonly requiresRestart: readonly string[];
}

export interface Shutdown {
  readonly type: 'shutdown';
  readonly reason: string;
}

export interface ActorCrashed {
  readonly type: 'actor-crashed';
  readonly actor: string;
  readonly error: SerializedError;
  readonly restarts: number;
}

/** Errors cross threads as plain data and are recognised by code (STYLE: Errors). */
export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly stack?: string;
}

export type ControlMessage = ConfigChanged | Shutdown | ActorCrashed;
