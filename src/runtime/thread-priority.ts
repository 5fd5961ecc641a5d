// Background threads yield the cores to the event → action path. A worker thread that hosts only
// background actors (runtime.background: learning, episodes, the DB writer) lowers its own
// scheduling priority by runtime.backgroundNice, so that when a receiver, the adapter or the
// inference worker wakes up, the scheduler gives it a core before them. On this 2-core machine that
// cut the event → action p99 at 10,000 events/s by about 40% (bench/README.md, e2e) and left
// full-speed throughput as it was: background threads still get every idle cycle.
//
// Linux only: there the nice value belongs to the thread (setpriority on id 0 is the calling thread).
// Elsewhere it would apply to the whole process, so nothing is changed.

import { getPriority, setPriority } from 'node:os';

export interface PriorityOutcome {
  /** The nice value set, or undefined when the thread stays at its priority. */
  readonly nice?: number;
  /** Why it was not set, when it should have been. */
  readonly error?: string;
}

export function applyThreadPriority(
  actors: readonly string[],
  runtime: { readonly background: readonly string[]; readonly backgroundNice: number },
  platform: NodeJS.Platform = process.platform,
): PriorityOutcome {
  const background = new Set(runtime.background);
  if (runtime.backgroundNice === 0 || actors.length === 0) return {};
  if (!actors.every((a) => background.has(a.split(':')[0]!))) return {};
  if (platform !== 'linux') return {};
  try {
    // Relative to the thread's own priority, so that a Warden started under `nice` keeps the order.
    const nice = Math.min(19, getPriority(0) + runtime.backgroundNice);
    setPriority(0, nice);
    return { nice };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
