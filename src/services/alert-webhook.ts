// alerts.webhook: an alert POSTed as JSON to the operator's endpoint. The endpoint being down for
// a moment must not lose the alert, so a failed POST is retried with exponential backoff (1 s,
// 2 s, 4 s, as the dispatcher retries actions). A network error, a timeout, 408, 429 and 5xx are
// worth retrying; any other status says the endpoint refuses the alert, and another try would not
// change that. Whatever the outcome, nothing is thrown: the caller is the runtime's event loop.
// Webhook URLs often carry their credential in the path (Slack, Teams): logs show only the origin.

import type { Logger } from '../runtime/logger.ts';

export interface WebhookOptions {
  /** Waits before each retry (default 1 s, 2 s, 4 s). */
  readonly retryDelaysMs?: readonly number[];
  /** Per attempt (default 5 s). */
  readonly timeoutMs?: number;
}

export interface WebhookResult {
  readonly delivered: boolean;
  readonly attempts: number;
  /** What the last attempt got: an HTTP status, or the error's message. */
  readonly last: string;
}

/** The URL without its path, query or user info: what logs and `config show` may print. */
export function webhookShown(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && !u.search && !u.username ? u.origin : `${u.origin}/…`;
  } catch {
    return '<not a URL>';
  }
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

export async function postAlert(
  url: string,
  alert: object,
  log: Logger,
  options: WebhookOptions = {},
): Promise<WebhookResult> {
  const delays = options.retryDelaysMs ?? [1_000, 2_000, 4_000];
  const body = JSON.stringify(alert);
  if (!URL.canParse(url)) {
    log.error('alerts.webhook is not a URL: the alert was not sent');
    return { delivered: false, attempts: 0, last: 'not a URL' };
  }
  const shown = webhookShown(url);
  let last = '';
  for (let attempt = 1; ; attempt++) {
    let again: boolean;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
      });
      await response.body?.cancel();
      if (response.ok) return { delivered: true, attempts: attempt, last: String(response.status) };
      last = `HTTP ${response.status}`;
      again = retryable(response.status);
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause;
      last = cause?.message ?? (error as Error).message;
      again = true;
    }
    const delay = delays[attempt - 1];
    if (!again || delay === undefined) {
      log.error(
        { url: shown, attempts: attempt, last },
        again ? 'alert webhook failed after every retry' : 'alert webhook refused the alert',
      );
      return { delivered: false, attempts: attempt, last };
    }
    log.warn({ url: shown, attempt, last, retryInMs: delay }, 'alert webhook failed; retrying');
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/**
 * The alerts of one running Warden on their way to the webhook: each posted with retries, and
 * waited for at shutdown (up to a bound), so an alert raised just before a stop is not dropped.
 */
export class AlertWebhook {
  readonly #url: () => string | null;
  readonly #log: Logger;
  readonly #options: WebhookOptions;
  readonly #pending = new Set<Promise<WebhookResult>>();

  /** `url` is read at each alert: the configuration may change it while Warden runs. */
  constructor(url: () => string | null, log: Logger, options: WebhookOptions = {}) {
    this.#url = url;
    this.#log = log;
    this.#options = options;
  }

  /** Posts the alert (with retries) when a webhook is configured; undefined when none is. */
  send(alert: object): Promise<WebhookResult> | undefined {
    const url = this.#url();
    if (!url) return undefined;
    const posted = postAlert(url, alert, this.#log, this.#options);
    this.#pending.add(posted);
    void posted.finally(() => this.#pending.delete(posted));
    return posted;
  }

  /** Waits for the alerts still being posted (retries included), at most `ms`; how many were left. */
  async drain(ms: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    await Promise.race([Promise.allSettled([...this.#pending]), timeout]);
    clearTimeout(timer);
    if (this.#pending.size > 0)
      this.#log.warn(
        { alerts: this.#pending.size },
        'stopping with alerts not yet delivered to the webhook',
      );
    return this.#pending.size;
  }
}
