// Runs one actor inside a thread: a bounded mailbox processed one message at a time.
// A handler that throws marks the cell crashed; its mailbox keeps filling until the supervisor
// restarts it (the message that crashed it is dropped and counted, so it cannot crash it again).

import type { WardenConfig } from '../config/schema.ts';
import type { ActorStats, SerializedError } from '../messages/control.ts';
import type { ActorContext, ActorDefinition, Message } from './actor.ts';
import { serializeError } from './errors.ts';

export type CellStatus = 'starting' | 'running' | 'crashed' | 'failed' | 'stopped';

export class ActorCell {
  readonly definition: ActorDefinition<Message, unknown>;
  #ctx: ActorContext;
  #state: unknown;
  #status: CellStatus = 'starting';
  readonly #mailbox: Message[] = [];
  #head = 0;
  #draining = false;
  #accepted = 0;
  #taken = 0;
  readonly #capacity: number;
  readonly #onCrash: (error: SerializedError, message?: Message) => void;
  /**
   * A message was taken up (shared/backlog.ts). Those given up are settled where they become dead
   * letters, on main: a full mailbox, or an abandoned one (the supervisor reports each).
   */
  readonly #onTaken: () => void;
  #handled = 0;
  #failed = 0;
  #dropped = 0;
  #restarts = 0;

  constructor(
    definition: ActorDefinition<Message, unknown>,
    ctx: ActorContext,
    capacity: number,
    onCrash: (error: SerializedError, message?: Message) => void,
    onTaken: () => void = () => {},
  ) {
    this.definition = definition;
    this.#ctx = ctx;
    this.#capacity = capacity;
    this.#onCrash = onCrash;
    this.#onTaken = onTaken;
  }

  get status(): CellStatus {
    return this.#status;
  }

  get depth(): number {
    return this.#mailbox.length - this.#head;
  }

  async start(): Promise<void> {
    try {
      this.#state = await this.definition.init(this.#ctx);
    } catch (error) {
      this.#crash(error);
      return;
    }
    this.#status = 'running';
    this.#drain();
  }

  async restart(): Promise<void> {
    this.#restarts++;
    this.#status = 'starting';
    await this.start();
  }

  /** Accepts a message; false when the mailbox is full or the actor gave up (caller counts it). */
  enqueue(message: Message): boolean {
    if (this.#status === 'failed' || this.#status === 'stopped') return false;
    if (this.depth >= this.#capacity) {
      this.#dropped++;
      return false;
    }
    this.#mailbox.push(message);
    this.#accepted++;
    if (this.#status === 'running') this.#drain();
    return true;
  }

  /** The supervisor gave up: the cell stops accepting messages; returns how many were dropped. */
  abandon(): number {
    this.#status = 'failed';
    const dropped = this.depth;
    this.#mailbox.length = 0;
    this.#head = 0;
    this.#dropped += dropped;
    return dropped;
  }

  async configure(config: WardenConfig): Promise<void> {
    this.#ctx = { ...this.#ctx, config };
    if (this.#status !== 'running' || !this.definition.configure) return;
    try {
      this.#state = await this.definition.configure(this.#state, config, this.#ctx);
    } catch (error) {
      this.#crash(error);
    }
  }

  stats(): ActorStats {
    let custom: Record<string, number> = {};
    if (this.#status === 'running' && this.definition.stats) {
      try {
        custom = this.definition.stats(this.#state);
      } catch {
        custom = {};
      }
    }
    return {
      actor: this.#ctx.name,
      handled: this.#handled,
      failed: this.#failed,
      restarts: this.#restarts,
      mailboxDepth: this.depth,
      custom: { ...custom, dropped: this.#dropped },
    };
  }

  /** Messages accepted into the mailbox since start (the worker host's stop waits for them). */
  get accepted(): number {
    return this.#accepted;
  }

  /**
   * Handles what is already in the mailbox, then runs the stop hook. Messages accepted before the
   * stop are never dropped (a crashed actor's wait for its restart is the supervisor's to end).
   */
  async stop(): Promise<void> {
    // Up to what was accepted by now: a sender that is still running cannot hold the stop open.
    const target = this.#accepted;
    while (this.#status === 'running' && (this.#taken < target || this.#draining))
      await new Promise<void>((resolve) => setImmediate(resolve));
    const wasRunning = this.#status === 'running';
    this.#status = 'stopped';
    if (wasRunning && this.definition.stop) await this.definition.stop(this.#state, this.#ctx);
  }

  #crash(error: unknown, message?: Message): void {
    this.#failed++;
    this.#status = 'crashed';
    this.#onCrash(serializeError(error), message);
  }

  /** Processes messages one at a time; re-entrant calls return while a drain is running. */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    try {
      let sinceYield = 0;
      while (this.#status === 'running' && this.#head < this.#mailbox.length) {
        // Co-located actors share the event loop: yield now and then so none starves the others.
        if (++sinceYield === 256) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        const message = this.#mailbox[this.#head]!;
        this.#mailbox[this.#head++] = undefined as unknown as Message;
        this.#taken++;
        this.#onTaken();
        if (this.#head > 1024 && this.#head * 2 > this.#mailbox.length) {
          this.#mailbox.splice(0, this.#head);
          this.#head = 0;
        }
        try {
          const next = this.definition.handle(this.#state, message, this.#ctx);
          this.#state = next instanceof Promise ? await next : next;
          this.#handled++;
        } catch (error) {
          this.#crash(error, message);
        }
      }
    } finally {
      this.#draining = false;
    }
  }
}
