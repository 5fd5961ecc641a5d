// Readiness (`/ready` beside `/metrics` and `/health`): whether this Warden can do its whole job
// now, for an orchestrator that sends it work or traffic only when it can (a Kubernetes readiness
// probe, a load balancer in front of PatternQuery). `/health` says the process answers; `/ready`
// says, check by check, what it needs is there: it is not stopping, and its database answers
// (learned patterns and episodes are written there, PatternQuery reads them; while it is away the
// DB writer journals locally, so decisions go on, but the store is behind). The model it serves
// is reported, not judged: the rule table deciding is a working state, alerted on by itself.

import type pg from 'pg';
import type { Logger } from '../runtime/logger.ts';
import { settlesWithin } from '../runtime/within.ts';

export interface Check {
  readonly ok: boolean;
  readonly detail: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, Check>>;
}

export interface ReadinessSources {
  /** The database the DB writer and PatternQuery use. */
  readonly pool: pg.Pool;
  /** True once a stop began (a signal, --duration, an actor that gave up). */
  readonly stopping: () => boolean;
  /** The version the inference pool serves ('rules' for the rule table). */
  readonly modelVersion: () => string;
  /** How long the database gets to answer (default 2,000 ms). */
  readonly timeoutMs?: number;
  /** Told when the database stops answering and when it answers again (once each way). */
  readonly log?: Pick<Logger, 'warn' | 'info'>;
}

/**
 * A readiness probe over `sources`. One database round trip at a time: probes that come while one
 * is out share its answer, so a stalled server is never asked by a pile of them (each would hold a
 * pool connection PatternQuery needs).
 */
export function readinessProbe(sources: ReadinessSources): () => Promise<Readiness> {
  const timeoutMs = sources.timeoutMs ?? 2_000;
  let asking: Promise<Check> | undefined;
  let answered = true;
  const noted = (check: Check): Check => {
    if (check.ok !== answered) {
      answered = check.ok;
      if (check.ok) sources.log?.info({}, 'database answers again (readiness)');
      else sources.log?.warn({ detail: check.detail }, 'database not answering (readiness)');
    }
    return check;
  };
  const database = (): Promise<Check> => {
    asking ??= (async (): Promise<Check> => {
      let failure: Error | undefined;
      const query = sources.pool.query('SELECT 1').catch((error: Error) => {
        failure = error;
      });
      try {
        if (!(await settlesWithin(query, timeoutMs)))
          return { ok: false, detail: `no answer within ${timeoutMs} ms` };
        return failure
          ? { ok: false, detail: `unreachable: ${failure.message}` }
          : { ok: true, detail: 'answers' };
      } finally {
        // A stalled query keeps later probes waiting on it, never adds to it.
        query.finally(() => {
          asking = undefined;
        });
      }
    })().then(noted);
    return asking;
  };
  return async () => {
    const stopping = sources.stopping();
    const checks: Record<string, Check> = {
      running: stopping ? { ok: false, detail: 'stopping' } : { ok: true, detail: 'running' },
      database: stopping ? { ok: false, detail: 'not asked: stopping' } : await database(),
      model: { ok: true, detail: `serving ${sources.modelVersion()}` },
    };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
}
