// The episode history for analysts and detection systems: what Warden did with a file, stage by
// stage — one episode by id, every episode of an artifact (by its hash), or the latest to end,
// each with its stages' final actions and, on request, every step. Parameterised SQL only.

import type pg from 'pg';

export interface EpisodeQuery {
  /** Stored forms of one episode id (several when the column is encrypted: one per key). */
  readonly episodeIds?: readonly string[];
  /** Stored forms of one artifact hash. */
  readonly artifactHashes?: readonly string[];
  /** Episodes that ended in [from, to). */
  readonly from?: Date;
  readonly to?: Date;
  readonly limit: number;
  /** Every step's action and reward too. */
  readonly steps?: boolean;
}

export interface StageSummary {
  readonly stage: number;
  readonly steps: number;
  /** The action of the stage's last step: what ended it (or the last one taken). */
  readonly finalAction: number;
  readonly reward: number;
}

export interface StepRow {
  readonly stage: number;
  readonly step: number;
  readonly action: number;
  readonly reward: number;
  readonly done: boolean;
}

export interface EpisodeRow {
  readonly episodeId: string;
  readonly artifactHash: string | null;
  readonly label: string;
  readonly partial: boolean;
  readonly failureReason: string | null;
  readonly modelVersion: string;
  readonly totalReward: number;
  readonly transitions: number;
  readonly startedAt: Date;
  readonly endedAt: Date;
  readonly stages: StageSummary[];
  readonly steps: StepRow[];
}

/** Episodes matching `q`, the latest to end first. */
export async function queryEpisodes(db: pg.Pool, q: EpisodeQuery): Promise<EpisodeRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (q.episodeIds) where.push(`episode_id = ANY(${arg(q.episodeIds)}::text[])`);
  if (q.artifactHashes) where.push(`artifact_hash = ANY(${arg(q.artifactHashes)}::text[])`);
  if (q.from) where.push(`ended_at >= ${arg(q.from)}`);
  if (q.to) where.push(`ended_at < ${arg(q.to)}`);
  const { rows } = await db.query<Omit<EpisodeRow, 'stages' | 'steps'>>(
    `SELECT episode_id AS "episodeId", artifact_hash AS "artifactHash", label, partial,
            failure_reason AS "failureReason", model_version AS "modelVersion",
            total_reward AS "totalReward", transitions, started_at AS "startedAt",
            ended_at AS "endedAt"
       FROM episodes ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY ended_at DESC LIMIT ${arg(q.limit)}`,
    args,
  );
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.episodeId);
  const stages = await db.query<StageSummary & { episodeId: string }>(
    `SELECT episode_id AS "episodeId", stage, count(*)::int AS steps,
            (array_agg(action ORDER BY step DESC))[1] AS "finalAction", sum(reward)::real AS reward
       FROM trajectories WHERE episode_id = ANY($1::text[])
      GROUP BY episode_id, stage ORDER BY episode_id, stage`,
    [ids],
  );
  const steps = q.steps
    ? await db.query<StepRow & { episodeId: string }>(
        `SELECT episode_id AS "episodeId", stage, step, action, reward, done
           FROM trajectories WHERE episode_id = ANY($1::text[]) ORDER BY episode_id, stage, step`,
        [ids],
      )
    : undefined;
  const byEpisode = <R extends { episodeId: string }>(list: readonly R[] = []) => {
    const map = new Map<string, Omit<R, 'episodeId'>[]>();
    for (const { episodeId, ...rest } of list) {
      const to = map.get(episodeId) ?? [];
      to.push(rest);
      map.set(episodeId, to);
    }
    return map;
  };
  const stagesOf = byEpisode(stages.rows);
  const stepsOf = byEpisode(steps?.rows);
  return rows.map((r) => ({
    ...r,
    stages: stagesOf.get(r.episodeId) ?? [],
    steps: stepsOf.get(r.episodeId) ?? [],
  }));
}
