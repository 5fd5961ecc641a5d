// alerts.webhook against a real HTTP server on 127.0.0.1: an endpoint down for a moment still gets
// the alert (retried with backoff), one that refuses it is not asked again, and the logs never
// show the credential a webhook URL carries in its path.

import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { createLogger } from '../../src/runtime/logger.ts';
import { AlertWebhook, postAlert, webhookShown } from '../../src/services/alert-webhook.ts';

/** An endpoint answering each POST with the next status of `statuses` (then 200), after `delayMs`. */
async function endpoint(statuses: number[], delayMs = 0) {
  const bodies: unknown[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (b: Buffer) => {
      text += b.toString();
    });
    req.on('end', () => {
      bodies.push({
        method: req.method,
        type: req.headers['content-type'],
        body: JSON.parse(text),
      });
      setTimeout(() => res.writeHead(statuses.shift() ?? 200).end(), delayMs).unref();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/T000/SECRET-TOKEN`,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (l: string) => lines.push(JSON.parse(l)) }, 'warn');
  return { log, lines };
}

const alert = { type: 'model-degraded', version: 'v2', previousVersion: 'v1', accuracy: 0.6 };
const fast = { retryDelaysMs: [20, 40, 80], timeoutMs: 2_000 };

test('an endpoint failing twice (503, 429) gets the alert on the third try, as JSON, once', async (t) => {
  const hook = await endpoint([503, 429]);
  const { log, lines } = capturedLog();
  try {
    const r = await postAlert(hook.url, alert, log, fast);
    t.deepEqual(r, { delivered: true, attempts: 3, last: '200' });
    t.is(hook.bodies.length, 3);
    t.deepEqual(hook.bodies[2], { method: 'POST', type: 'application/json', body: alert });
    t.deepEqual(
      lines.map((l) => [l.msg, l.last]),
      [
        ['alert webhook failed; retrying', 'HTTP 503'],
        ['alert webhook failed; retrying', 'HTTP 429'],
      ],
    );
  } finally {
    await hook.close();
  }
});

test('a refusal (400) is not retried; an endpoint that stays down is tried 1 + 3 times; neither throws', async (t) => {
  const refusing = await endpoint([400]);
  const { log, lines } = capturedLog();
  try {
    const r = await postAlert(refusing.url, alert, log, fast);
    t.deepEqual(r, { delivered: false, attempts: 1, last: 'HTTP 400' });
    t.is(refusing.bodies.length, 1);
    t.is(lines.at(-1)!.msg, 'alert webhook refused the alert');
  } finally {
    await refusing.close();
  }
  // Nothing listens on the port any more: connection refused, every time.
  const down = await postAlert(refusing.url, alert, log, fast);
  t.false(down.delivered);
  t.is(down.attempts, 4);
  t.regex(down.last, /ECONNREFUSED/);
  t.is(lines.at(-1)!.msg, 'alert webhook failed after every retry');
  // A URL that does not parse (the schema asks only for http(s)://) is not tried at all.
  t.deepEqual(await postAlert('https://hooks example.com/SECRET-TOKEN', alert, log, fast), {
    delivered: false,
    attempts: 0,
    last: 'not a URL',
  });
  t.is(lines.at(-1)!.msg, 'alerts.webhook is not a URL: the alert was not sent');
  t.false(
    JSON.stringify(lines).includes('SECRET-TOKEN'),
    'the credential in the URL path is not logged',
  );
  const withUrl = lines.filter((l) => 'url' in l);
  t.is(withUrl.length, 5, 'the refusal, three retries and the last failure');
  t.true(withUrl.every((l) => l.url === `${new URL(refusing.url).origin}/…`));
});

test('webhookShown keeps only what may be printed', (t) => {
  t.is(webhookShown('https://hooks.example.com/services/T0/B0/XYZ'), 'https://hooks.example.com/…');
  t.is(webhookShown('https://user:pw@alerts.example.com/'), 'https://alerts.example.com/…');
  t.is(webhookShown('https://alerts.example.com'), 'https://alerts.example.com');
  t.is(webhookShown('https://alerts.example.com/?token=x'), 'https://alerts.example.com/…');
  t.is(webhookShown('not a url'), '<not a URL>');
});

test('at a stop, an alert still on its way (a slow endpoint, a retry) is waited for; the URL is read at each alert, so a configuration change applies', async (t) => {
  const slow = await endpoint([503], 150);
  const { log, lines } = capturedLog();
  let url: string | null = null;
  const webhook = new AlertWebhook(() => url, log, fast);
  try {
    t.is(webhook.send(alert), undefined, 'no webhook configured: nothing sent');
    url = slow.url;
    void webhook.send(alert);
    t.is(await webhook.drain(5_000), 0, 'every alert settled before the stop went on');
    t.is(slow.bodies.length, 2, 'refused once (503), delivered on the retry');
    // An endpoint that never answers in time: the stop waits only so long, and says so.
    const never = await endpoint([], 60_000);
    try {
      const hanging = new AlertWebhook(() => never.url, log, {
        retryDelaysMs: [],
        timeoutMs: 60_000,
      });
      void hanging.send(alert);
      t.is(await hanging.drain(100), 1);
      t.is(lines.at(-1)!.msg, 'stopping with alerts not yet delivered to the webhook');
    } finally {
      await never.close();
    }
  } finally {
    await slow.close();
  }
});
