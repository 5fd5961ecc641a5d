// The two reference sandboxes of DESIGN §1 on one machine: the positive sandbox runs stage 1 and
// hands each file, cleaned or as it was, to the negative sandbox, which runs stage 2 under the
// same episode id. `npm start` (the demo) and `warden sandbox` both start them with this.

import { seededRandom } from '../actors/learner/q-network.ts';
import { loadTraces } from '../data/load-traces.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ServerTls } from '../security/tls.ts';
import { ReferenceSandbox, type ReferenceSandboxOptions } from './reference-sandbox.ts';

export const BUNDLED_TRACES = new URL('../../data/oliveira-balanced/api_calls.csv', import.meta.url)
  .pathname;

/**
 * A recorded data set in the order a sandbox would meet it: a seeded shuffle (the bundled file
 * lists goodware first, then malware).
 */
export async function replayOrder(path: string = BUNDLED_TRACES): Promise<RecordedTrace[]> {
  const rand = seededRandom(2019);
  return (await loadTraces(path))
    .map((t) => ({ t, k: rand() }))
    .sort((a, b) => a.k - b.k)
    .map(({ t }) => t);
}

export interface PairOptions
  extends Pick<
    ReferenceSandboxOptions,
    | 'concurrency'
    | 'eventsPerSecond'
    | 'realTime'
    | 'cleanSuccessRate'
    | 'episodes'
    | 'stageTimeoutMs'
    | 'seed'
    | 'log'
  > {
  readonly traces: readonly RecordedTrace[];
  readonly names?: readonly [string, string];
  readonly host?: string;
  /** Ports for the positive and the negative sandbox (0: any free port). */
  readonly ports?: readonly [number, number];
  readonly tls?: ServerTls | null;
  /** Faults for the positive (first) and the negative sandbox (fault-injection runs). */
  readonly faults?: readonly [ReferenceSandboxOptions['faults'], ReferenceSandboxOptions['faults']];
  readonly log: Logger;
}

export interface ReferencePair {
  readonly positive: ReferenceSandbox;
  readonly negative: ReferenceSandbox;
  /** Both, stage 1 first. */
  readonly sandboxes: readonly [ReferenceSandbox, ReferenceSandbox];
  stop(): Promise<void>;
}

/** Starts the negative sandbox, then the positive one (which begins streaming at once). */
export async function startReferencePair(o: PairOptions): Promise<ReferencePair> {
  const { traces, names = ['positive', 'negative'], host, ports = [0, 0], tls = null } = o;
  const shared = {
    ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
    ...(o.eventsPerSecond === undefined ? {} : { eventsPerSecond: o.eventsPerSecond }),
    ...(o.realTime === undefined ? {} : { realTime: o.realTime }),
    ...(o.cleanSuccessRate === undefined ? {} : { cleanSuccessRate: o.cleanSuccessRate }),
    ...(o.stageTimeoutMs === undefined ? {} : { stageTimeoutMs: o.stageTimeoutMs }),
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    log: o.log,
  };
  const negative = new ReferenceSandbox({
    ...shared,
    name: names[1],
    role: 'negative',
    traces: [],
    benign: [],
    ...(o.faults?.[1] ? { faults: o.faults[1] } : {}),
  });
  const positive = new ReferenceSandbox({
    ...shared,
    name: names[0],
    role: 'positive',
    next: negative,
    traces,
    benign: traces.filter((t) => t.episode.label === 'benign'),
    ...(o.episodes === undefined ? {} : { episodes: o.episodes }),
    ...(o.faults?.[0] ? { faults: o.faults[0] } : {}),
  });
  await negative.start(ports[1], host, tls);
  try {
    await positive.start(ports[0], host, tls);
  } catch (error) {
    await negative.stop();
    throw error;
  }
  return {
    positive,
    negative,
    sandboxes: [positive, negative],
    // The positive one first: no new files reach the negative one while it stops.
    stop: async () => {
      await positive.stop();
      await negative.stop();
    },
  };
}
