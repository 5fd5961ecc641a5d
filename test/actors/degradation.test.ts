// Property 32: a drop in detection quality or reward beyond the threshold raises one alert.

import test from 'ava';
import fc from 'fast-check';
import {
  type DegradationAlert,
  DegradationMonitor,
} from '../../src/actors/episodes/degradation.ts';

const options = { window: 100, minEpisodes: 20, maxAccuracyDrop: 0.1, maxRewardDrop: 0.5 };

test('property 32: a new version whose accuracy falls more than the threshold is alerted, once; one that holds up is not', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { minLength: 50, maxLength: 50 }),
      fc.array(fc.boolean(), { minLength: 50, maxLength: 50 }),
      (before, after) => {
        const m = new DegradationMonitor(options);
        for (const correct of before) m.record('v1', correct, 0);
        const alerts = after
          .map((correct) => m.record('v2', correct, 0))
          .filter((a) => a !== undefined);
        const share = (xs: boolean[]) => xs.filter(Boolean).length / xs.length;
        // The monitor checks after every verdict from the 20th on: it alerts as soon as the drop shows.
        const worst = Math.max(
          ...Array.from({ length: 31 }, (_, k) => share(before) - share(after.slice(0, 20 + k))),
        );
        return alerts.length === (worst > options.maxAccuracyDrop ? 1 : 0);
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('an alert names both versions and their figures; a reward collapse alerts too; the first version never alerts', (t) => {
  const m = new DegradationMonitor(options);
  for (let i = 0; i < 30; i++) t.is(m.record('v1', true, 1), undefined);
  let alert: DegradationAlert | undefined;
  for (let i = 0; i < 30 && !alert; i++) alert = m.record('v2', i % 2 === 0, 1);
  t.like(alert, {
    type: 'model-degraded',
    version: 'v2',
    previousVersion: 'v1',
    previousAccuracy: 1,
  });
  t.true(alert!.accuracy < 0.9);
  const r = new DegradationMonitor(options);
  for (let i = 0; i < 30; i++) r.record('a', true, 1);
  let rewardAlert: DegradationAlert | undefined;
  for (let i = 0; i < 30 && !rewardAlert; i++) rewardAlert = r.record('b', true, -1);
  t.is(rewardAlert?.version, 'b', 'same accuracy, reward fell by 2');
  t.is(r.alerts, 1);
});
