// What runs where in a fleet (cluster.role) and the one-learner-at-a-time rule.
//
//   all        every actor on this host (the single-host default)
//   inference  receivers, adapter + inference pool, dispatcher, episodes, DB writer, registry:
//              experiences go to PostgreSQL, models come from it
//   learner    learner + experience feed: reads every host's experiences, publishes models;
//              leadership through a PostgreSQL advisory lock — a standby waits and takes over
//              when the leader's session ends

import pg from 'pg';
import type { HostRole, WardenConfig } from '../config/schema.ts';
import type { Logger } from '../runtime/logger.ts';

/** Advisory lock held by the learner leader for as long as its session lives. */
export const LEADER_LOCK = 0x574c_4541; // "WLEA"

export function placementFor(config: WardenConfig): Record<string, string[]> {
  const role: HostRole = config.cluster.role;
  const placement = config.runtime.placement;
  if (role === 'learner') return { learner: ['learner', 'experience-feed'] };
  if (role === 'all') return placement;
  const out: Record<string, string[]> = {};
  for (const [thread, actors] of Object.entries(placement)) {
    const kept = actors.filter((a) => a !== 'learner' && a !== 'experience-feed');
    if (kept.length > 0) out[thread] = kept;
  }
  const home = Object.keys(out).find((t) => out[t]!.includes('db-writer')) ?? 'control';
  out[home] = [...(out[home] ?? []), 'registry'];
  return out;
}

export interface Leadership {
  /** Ends the session, which releases the lock for a standby. */
  release(): Promise<void>;
}

/**
 * Waits until this process holds the learner lock (polling every `pollMs`); `onLost` runs if the
 * session holding it breaks — the caller must stop learning, since another host may take over.
 */
export async function acquireLeadership(
  url: string,
  log: Logger,
  pollMs: number,
  onWaiting: () => void,
  onLost: (error: Error) => void,
  signal?: AbortSignal,
): Promise<Leadership | undefined> {
  let said = false;
  for (;;) {
    if (signal?.aborted) return undefined;
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined); // handled below
    try {
      await client.connect();
      for (;;) {
        if (signal?.aborted) {
          await client.end();
          return undefined;
        }
        const { rows } = await client.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_lock($1) AS ok',
          [LEADER_LOCK],
        );
        if (rows[0]?.ok) {
          client.removeAllListeners('error');
          let released = false;
          client.on('error', (error) => {
            if (!released) onLost(error);
          });
          client.on('end', () => {
            if (!released) onLost(new Error('leadership session ended'));
          });
          return {
            release: async () => {
              released = true;
              await client.end().catch(() => undefined);
            },
          };
        }
        if (!said) {
          said = true;
          onWaiting();
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    } catch (error) {
      log.warn({ err: error }, 'learner leadership: database unreachable; retrying');
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
