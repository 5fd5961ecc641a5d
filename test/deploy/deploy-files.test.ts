// deploy/: the Grafana dashboard and the Prometheus rules parse, have the expected shape, and
// every warden_* metric they reference is one a running system actually exports.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import test from 'ava';
import { parse } from 'yaml';
import { ActorSystem } from '../../src/runtime/system.ts';
import { metricsRegistry } from '../../src/services/metrics.ts';
import { fixtureActor, testConfig } from '../helpers.ts';

const DEPLOY = new URL('../../deploy/', import.meta.url).pathname;
const referenced = (text: string) => new Set(text.match(/\bwarden_[a-z0-9_]+/g) ?? []);

async function exportedNames(): Promise<Set<string>> {
  const system = new ActorSystem({
    config: testConfig({ runtime: { placement: { one: ['a'] } } }),
    modules: { a: fixtureActor('echo') },
  });
  await system.start();
  try {
    const text = await metricsRegistry(system).scrape();
    // Metric families and their series (a histogram's _bucket, _sum and _count).
    return new Set([
      ...[...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!),
      ...[...text.matchAll(/^(warden_[a-z0-9_]+)[{ ]/gm)].map((m) => m[1]!),
    ]);
  } finally {
    await system.stop();
  }
}

test('the dashboard and the alert rules reference only metrics Warden exports', async (t) => {
  const names = await exportedNames();
  t.true(
    names.has('warden_decisions') && names.has('warden_actor_restarts'),
    'sanity: the exporter was read',
  );

  const dashboardText = readFileSync(`${DEPLOY}grafana-dashboard.json`, 'utf8');
  const dashboard = JSON.parse(dashboardText) as {
    title: string;
    uid: string;
    panels: { title: string; targets: { expr: string }[] }[];
  };
  t.is(dashboard.title, 'Warden');
  t.true(dashboard.panels.length >= 8);
  t.true(
    dashboard.panels.every(
      (p) => p.title && p.targets.length > 0 && p.targets.every((x) => x.expr.includes('warden_')),
    ),
  );

  const rules = parse(readFileSync(`${DEPLOY}prometheus-rules.yml`, 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string }[] }[];
  };
  const alerts = rules.groups.flatMap((g) => g.rules);
  t.true(alerts.length >= 5);
  t.true(alerts.every((r) => /^Warden[A-Za-z]+$/.test(r.alert) && r.expr.trim() !== ''));
  // The on-call table says what each alert means and what to do first.
  const operations = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const table = operations.slice(operations.indexOf('### Alerts'));
  t.deepEqual(
    alerts.map((r) => r.alert).filter((a) => !table.includes(`\`${a}\``)),
    [],
    'every alert is in the table of docs/operations.md',
  );

  const missing = [
    ...referenced(dashboardText),
    ...alerts.flatMap((r) => [...referenced(r.expr)]),
  ].filter((m) => !names.has(m));
  t.deepEqual([...new Set(missing)], [], 'every referenced metric is exported');
});

// Debian's promtool, when CI could install it (.ci/run); skipped — not passed — otherwise.
const promtool = spawnSync('promtool', ['--version']).status === 0;
(promtool ? test : test.skip)('promtool accepts the alert rules', (t) => {
  const r = spawnSync('promtool', ['check', 'rules', `${DEPLOY}prometheus-rules.yml`], {
    encoding: 'utf8',
  });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /SUCCESS: \d+ rules found/);
});

(promtool ? test : test.skip)(
  'alerts fire when they should and not otherwise: a sandbox Warden keeps losing, rejected telemetry, a refused model, a defaulted configuration, a certificate about to expire (promtool test rules)',
  (t) => {
    const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], {
      cwd: new URL('../fixtures/deploy/', import.meta.url).pathname,
      encoding: 'utf8',
    });
    t.is(r.status, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /SUCCESS/);
  },
);
