// `warden patterns query`: asks a running Warden's PatternQuery service (loopback by default;
// token from WARDEN_TOKEN, TLS with --ca).

import { loadConfig } from '../config/load.ts';
import { openDatabase } from '../db/connect.ts';
import { reindexPatterns } from '../db/ivf-store.ts';
import { actionLabel } from '../messages/action.ts';
import { componentLogger } from '../runtime/logger.ts';
import { patternQueryClient } from '../services/pattern-query.ts';
import { type ServiceFlags, withClient } from './service-commands.ts';

export async function patternsQueryCommand(
  opts: ServiceFlags & {
    type?: string;
    from?: string;
    to?: string;
    near?: string;
    /** Whole numbers ≥ 1 (main.ts parses them). */
    k?: number;
    limit?: number;
    json?: boolean;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  return withClient(patternQueryClient, opts, async (client) => {
    const limit = opts.limit ?? 100;
    let rows: Awaited<ReturnType<typeof client.byAttackType>>;
    if (opts.type) rows = await client.byAttackType(opts.type, limit);
    else if (opts.from || opts.to) {
      const from = Date.parse(opts.from ?? '1970-01-01');
      const to = opts.to ? Date.parse(opts.to) : Date.now();
      if (!Number.isFinite(from) || !Number.isFinite(to))
        throw new Error('--from/--to must be dates (ISO 8601)');
      rows = await client.byTimeRange(from, to, limit);
    } else if (opts.near) {
      const features = opts.near.split(',').map(Number);
      rows = await client.nearest(features, opts.k ?? 10);
    } else
      throw new Error(
        'say what to query: --type <attack type>, --from/--to <dates>, or --near <v1,v2,…>',
      );
    if (opts.json) out.write(`${JSON.stringify(rows, null, 2)}\n`);
    else {
      for (const r of rows) {
        const extra = opts.near
          ? `  distance ${r.distance.toFixed(4)}  score ${r.score.toFixed(3)}`
          : '';
        out.write(
          `${new Date(r.createdAtMs).toISOString()}  ${r.attackType.padEnd(20)} ${actionLabel(r.action).padEnd(15)}  confidence ${r.confidence.toFixed(3)}  ${r.modelVersion}  ${r.episodeId}${extra}\n`,
        );
      }
      out.write(`${rows.length} pattern(s)\n`);
    }
  });
}

/** `warden patterns reindex`: nearest-neighbour cells trained, filed and clustered. */
export async function patternsReindexCommand(
  opts: { configDir?: string; retrain?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const { config } = loadConfig(opts.configDir ? { dir: opts.configDir } : {});
  const db = await openDatabase(config, componentLogger('cli'));
  try {
    const r = await reindexPatterns(db.pool, { retrain: opts.retrain === true });
    out.write(
      `${r.trained ? `cells trained (generation ${r.generation}), every pattern filed` : `${r.filed} pattern(s) filed`}; rows clustered by cell in ${r.seconds.toFixed(1)} s\n`,
    );
    return 0;
  } finally {
    await db.close();
  }
}
