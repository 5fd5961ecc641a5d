// The episode history. `warden db episodes`: what Warden did with each file, stage by stage, asked
// of a running Warden's PatternQuery service (read role; db/episodes.ts). `warden db prune`:
// history retention on the database itself (db/prune.ts), run by an operator with a role that may
// delete.

import { loadConfig } from '../config/load.ts';
import { openDatabase } from '../db/connect.ts';
import { parseAge, pruneHistory } from '../db/prune.ts';
import { actionLabel } from '../messages/action.ts';
import { componentLogger } from '../runtime/logger.ts';
import { patternQueryClient } from '../services/pattern-query.ts';
import { type ServiceFlags, withClient } from './service-commands.ts';

/** A stage's actions, repeats folded: "continue ×37 → terminate". */
function foldActions(actions: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < actions.length; ) {
    let j = i;
    while (j < actions.length && actions[j] === actions[i]) j++;
    parts.push(j - i > 1 ? `${actionLabel(actions[i]!)} ×${j - i}` : actionLabel(actions[i]!));
    i = j;
  }
  return parts.join(' → ');
}

export async function dbEpisodesCommand(
  opts: ServiceFlags & {
    id?: string;
    artifact?: string;
    from?: string;
    to?: string;
    limit?: string;
    steps?: boolean;
    json?: boolean;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  const date = (flag: string, v: string | undefined) => {
    if (v === undefined) return 0;
    const ms = Date.parse(v);
    if (!Number.isFinite(ms)) throw new Error(`${flag} must be a date (ISO 8601), got "${v}"`);
    return ms;
  };
  const limit = opts.limit === undefined ? 20 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit must be a positive integer');
  const request = {
    episodeId: opts.id ?? '',
    artifactHash: opts.artifact ?? '',
    fromMs: date('--from', opts.from),
    toMs: date('--to', opts.to),
    limit,
    steps: opts.steps === true,
  };
  return withClient(patternQueryClient, opts, async (client) => {
    const episodes = await client.episodes(request);
    // One named episode that is not there is an answer a script must be able to tell from one
    // that is (exit 1), like an unknown model version; a search that matches nothing is not.
    if (opts.id !== undefined && episodes.length === 0)
      throw new Error(
        `no episode ${opts.id} in the history (ended episodes only; pruned ones are gone)`,
      );
    if (opts.json) {
      out.write(`${JSON.stringify(episodes, null, 2)}\n`);
      return;
    }
    for (const e of episodes) {
      const how = e.partial ? `partial (${e.failureReason})` : 'complete';
      out.write(
        `${new Date(e.endedAtMs).toISOString()}  ${e.episodeId}  ${e.label}  ${how}  reward ${e.totalReward.toFixed(2)}  ${e.modelVersion}${e.artifactHash ? `  artifact ${e.artifactHash}` : ''}\n`,
      );
      for (const s of e.stages) {
        const actions = e.steps.filter((x) => x.stage === s.stage).map((x) => x.action);
        out.write(
          `  stage ${s.stage}: ${s.steps} decision(s), last ${actionLabel(s.finalAction)}, reward ${s.reward.toFixed(2)}${actions.length > 0 ? `\n    ${foldActions(actions)}` : ''}\n`,
        );
      }
    }
    out.write(`${episodes.length} episode(s)\n`);
  });
}

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
