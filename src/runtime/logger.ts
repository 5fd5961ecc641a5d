// Structured JSON logs (pino), one child logger per actor/component so every line says where it
// came from. Lines go to stdout, or — with logging.dir — to daily files per thread
// (`warden-<thread>.<yyyy-MM-dd>.<n>.log`, pino-roll), of which logging.keepDays are kept. File
// writes are asynchronous (sonic-boom): logging never waits for the disk on the decision path.

import { join } from 'node:path';
import { type DestinationStream, type Logger, pino } from 'pino';
import { makeDirectory } from './make-directory.ts';

export type { Logger };

interface Sink extends DestinationStream {
  flushSync?(): void;
  end?(): void;
}

/** Where every logger of this thread writes; swapped once logging.dir is known. */
let sink: Sink = pino.destination(1);
let toFile = false;
const proxy: DestinationStream = { write: (line: string) => sink.write(line) };

let root: Logger | undefined;

/**
 * A logger the way Warden's are made, writing to `destination`. An error's cause is logged as an
 * object of its own (type, message, stack) under `err.cause`: pino's default serializer appends the
 * cause's message to the error's, which repeats it wherever a message already quotes its cause
 * ("… is not valid JSON: Unexpected end of JSON input: Unexpected end of JSON input").
 */
export function createLogger(destination: DestinationStream, level = 'info'): Logger {
  return pino(
    {
      name: 'warden',
      level,
      base: { pid: process.pid },
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    destination,
  );
}

export function rootLogger(): Logger {
  root ??= createLogger(proxy, process.env.WARDEN_LOG_LEVEL ?? 'info');
  return root;
}

export function setLogLevel(level: string): void {
  rootLogger().level = level;
}

export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

/**
 * grpc-js writes its own diagnostics to stderr; they go to the structured log instead (debug), so
 * a command's failure is one clear line, its own, and the details are in the log.
 */
export function routeGrpcLogs(grpc: { setLogger(logger: Partial<Console>): void }): void {
  const log = componentLogger('grpc');
  grpc.setLogger({
    error: (...args: unknown[]) => log.debug(args.join(' ')),
    info: (...args: unknown[]) => log.debug(args.join(' ')),
    debug: (...args: unknown[]) => log.trace(args.join(' ')),
  });
}

export interface LogOutput {
  /** Directory for daily log files; null = stdout. */
  readonly dir: string | null;
  /** Daily files kept per thread (older ones are removed at rotation). */
  readonly keepDays: number;
}

/**
 * Sends this thread's log lines to `<dir>/warden-<name>.<date>.<n>.log`, rotated daily. Lines
 * written before this call went to stdout.
 */
export async function configureLogOutput(output: LogOutput, name: string): Promise<void> {
  if (!output.dir) return;
  makeDirectory(output.dir); // (pino-roll's own mkdir never returns for a path under /proc)
  const { default: roll } = await import('pino-roll');
  const file = await roll({
    file: join(output.dir, `warden-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}`),
    extension: '.log',
    frequency: 'daily',
    dateFormat: 'yyyy-MM-dd',
    mkdir: true,
    limit: { count: output.keepDays, removeOtherLogFiles: true },
  });
  // A write the disk refuses (full, read-only) is an 'error' event, and one nobody listens to
  // ends the process: a full disk under logging.dir took Warden down. Lines go to stdout instead.
  file.on('error', (error: NodeJS.ErrnoException) => {
    if (sink !== file) return;
    sink = pino.destination(1);
    toFile = false;
    rootLogger().error(
      { alert: 'warden_log_unwritable', err: error, dir: output.dir },
      'log file not writable: this thread logs to stdout from now on (lines buffered for the file are lost)',
    );
    try {
      file.destroy();
    } catch {
      // the file is given up either way
    }
  });
  const previous = sink;
  sink = file;
  toFile = true;
  previous.flushSync?.();
}

/** Writes out what is buffered and closes a log file (stdout stays open). */
export function closeLogOutput(): void {
  const current = sink;
  if (!toFile) return;
  toFile = false;
  try {
    current.flushSync?.();
  } catch {
    // nothing more can be done about a log that cannot be written
  }
  sink = pino.destination(1);
  current.end?.();
}

/** A logger that drops everything; for tests and tools that report through their own output. */
export const silentLogger: Logger = pino({ level: 'silent' });
