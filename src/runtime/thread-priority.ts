// Background threads yield the cores to the event → action path. A worker thread that hosts only
// background actors (runtime.background: learning, episodes, the DB writer) lowers its own
// scheduling priority by runtime.backgroundNice, so that when a receiver, the adapter or the
// inference worker wakes up, the scheduler gives it a core before them. On this 2-core machine that
// cut the event → action p99 at 10,000 events/s by about 40% (bench/README.md, e2e) and left
// full-speed throughput as it was: background threads still get every idle cycle.
//
// Linux only: there the nice value belongs to the thread (setpriority on id 0 is the calling thread).
// Elsewhere it would apply to the whole process, so nothing is changed. runtime.backgroundIdle also
// puts such a thread under SCHED_IDLE (off by default: see its description for the trade-off).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export interface PriorityOutcome {
  /** The nice value set, or undefined when the thread stays at its priority. */
  readonly nice?: number;
  /** Whether the thread was put under SCHED_IDLE (runtime.backgroundIdle). */
  readonly idle?: boolean;
  /** Why it was not set, when it should have been. */
  readonly error?: string;
}

export function applyThreadPriority(
  actors: readonly string[],
  runtime: {
    readonly background: readonly string[];
    readonly backgroundNice: number;
    readonly backgroundIdle?: boolean;
  },
  platform: NodeJS.Platform = process.platform,
): PriorityOutcome {
  const background = new Set(runtime.background);
  const idle = runtime.backgroundIdle === true;
  if ((runtime.backgroundNice === 0 && !idle) || actors.length === 0) return {};
  if (!actors.every((a) => background.has(a.split(':')[0]!))) return {};
  if (platform !== 'linux') return {};
  let nice: number | undefined;
  try {
    // Relative to the thread's own priority, so that a Warden started under `nice` keeps the order.
    if (runtime.backgroundNice > 0) {
      nice = Math.min(19, getPriority(0) + runtime.backgroundNice);
      setPriority(0, nice);
    }
  } catch (error) {
    return { error: (error as Error).message };
  }
  if (!idle) return nice === undefined ? {} : { nice };
  // No Node API sets a scheduling policy: util-linux's chrt does, for this thread's id. Lowering
  // one's own policy to SCHED_IDLE needs no privilege.
  const error = setIdlePolicy();
  return {
    ...(nice === undefined ? {} : { nice }),
    idle: error === undefined,
    ...(error ? { error } : {}),
  };
}

function setIdlePolicy(): string | undefined {
  try {
    const tid = readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]!;
    const r = spawnSync('chrt', ['--idle', '--pid', '0', tid], {
      encoding: 'utf8',
      timeout: 5_000,
    });
    if (r.error) return `chrt: ${r.error.message}`;
    if (r.status !== 0) return `chrt exited ${r.status}: ${r.stderr.trim()}`;
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
