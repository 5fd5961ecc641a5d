// Structured JSON logs (pino), one child logger per actor/component so every line says where it came from.

import { type Logger, pino } from 'pino';

export type { Logger };

let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({
    name: 'warden',
    level: process.env.WARDEN_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
  });
  return root;
}

export function setLogLevel(level: string): void {
  rootLogger().level = level;
}

export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

/** A logger that drops everything; for tests and tools that report through their own output. */
export const silentLogger: Logger = pino({ level: 'silent' });
