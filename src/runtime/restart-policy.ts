// Supervision policy as a pure function of failure times: exponential backoff between restarts,
// and giving up once more than maxRestarts failures fall inside one sliding window.

export interface RestartPolicyOptions {
  readonly maxRestarts: number;
  readonly windowMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

export type RestartDecision =
  | { readonly action: 'restart'; readonly delayMs: number; readonly attempt: number }
  | { readonly action: 'give-up'; readonly failures: number };

export class RestartPolicy {
  #failures: number[] = [];
  #options: RestartPolicyOptions;
  /** Restarts decided so far (what the stats report). */
  restarts = 0;

  constructor(options: RestartPolicyOptions) {
    this.#options = options;
  }

  set options(options: RestartPolicyOptions) {
    this.#options = options;
  }

  recordFailure(now: number): RestartDecision {
    const { maxRestarts, windowMs, backoffInitialMs, backoffMaxMs } = this.#options;
    this.#failures = this.#failures.filter((t) => now - t < windowMs);
    this.#failures.push(now);
    const inWindow = this.#failures.length;
    if (inWindow > maxRestarts) return { action: 'give-up', failures: inWindow };
    this.restarts++;
    const delayMs = Math.min(backoffMaxMs, backoffInitialMs * 2 ** (inWindow - 1));
    return { action: 'restart', delayMs, attempt: inWindow };
  }
}
