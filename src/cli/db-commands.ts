// `warden db prune`: history retention on the database itself (db/prune.ts), run by an operator
// with a role that may delete.

import { loadConfig } from '../config/load.ts';
import { openDatabase } from '../db/connect.ts';
import { parseAge, pruneHistory } from '../db/prune.ts';
import { componentLogger } from '../runtime/logger.ts';

export async function dbPruneCommand(
  opts: { olderThan: string; dryRun?: boolean; configDir?: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  const before = Date.now() - parseAge(opts.olderThan);
  const { config } = loadConfig(opts.configDir ? { dir: opts.configDir } : {});
  const db = await openDatabase(config, componentLogger('cli'));
  try {
    const r = await pruneHistory(db.pool, { before, dryRun: opts.dryRun === true });
    out.write(
      `${opts.dryRun ? 'would delete' : 'deleted'} ${r.episodes} episode(s) that ended before ${new Date(before).toISOString()}, ${r.trajectorySteps} trajectory step(s) and ${r.experiences} shared experience(s) (${r.seconds.toFixed(1)} s)\n`,
    );
    return 0;
  } finally {
    await db.close();
  }
}
