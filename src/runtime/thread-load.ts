// The calling thread's load (host-protocol.ts ThreadLoad), for the worker hosts and main.

import { readFileSync } from 'node:fs';
import type { ThreadLoad } from './host-protocol.ts';

/** Linux's clock tick (sysconf(_SC_CLK_TCK)); 100 on every mainstream kernel build. */
const TICKS_PER_SECOND = 100;
/** Linux's SCHED_IDLE scheduling policy number. */
const SCHED_IDLE = 5;

/**
 * CPU time (user + system, ms) and nice value of the calling thread; empty where /proc has no
 * thread-self.
 */
function threadStat(): { cpuMs?: number; nice?: number; idlePolicy?: boolean } {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15, nice is field 19, the scheduling policy field 41.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const nice = Number(fields[16]);
    const policy = Number(fields[38]);
    return {
      ...(Number.isFinite(ticks) ? { cpuMs: (ticks * 1000) / TICKS_PER_SECOND } : {}),
      ...(Number.isInteger(nice) ? { nice } : {}),
      ...(Number.isInteger(policy) ? { idlePolicy: policy === SCHED_IDLE } : {}),
    };
  } catch {
    return {};
  }
}

export function threadLoad(): ThreadLoad {
  const { active, idle } = performance.eventLoopUtilization();
  return { activeMs: active, idleMs: idle, ...threadStat() };
}
