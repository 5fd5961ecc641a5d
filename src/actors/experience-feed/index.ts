// The experience feed (learner host, cluster.role learner): reads every inference host's
// transitions from the shared experiences table in id order behind the learner's durable cursor
// (cluster/experiences.ts) and appends them to the shared replay storage the learner samples.
// Nothing is read twice or skipped, across restarts and leader changes (property 30).

import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type ConsumedRow, consumeExperiences, sampleHistory } from '../../cluster/experiences.ts';
import { createPool } from '../../db/connect.ts';
import type { Experience } from '../../messages/experience.ts';
import { type ActorContext, assertNever, defineActor } from '../../runtime/actor.ts';
import { ReplayStorage } from '../../runtime/shared/replay-storage.ts';

export const LEARNER_CURSOR = 'learner';

export type ExperienceFeedMessage = { readonly type: 'poll' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    'experience-feed': ExperienceFeedMessage;
  }
}

interface State {
  readonly pool: pg.Pool;
  readonly replay: ReplayStorage;
  timer: NodeJS.Timeout | undefined;
  consumed: number;
  appended: number;
  lastId: number;
  /** Older rows replayed beside new ones (replay.keepOldShare). */
  rehearsed: number;
  errors: number;
}

/** The replay stores episodes as int32 ids: a stable hash of (host, episode). */
const episodeNumber = (r: ConsumedRow) =>
  createHash('sha1').update(`${r.hostId}/${r.episodeId}`).digest().readInt32LE(0);

function toExperience(r: ConsumedRow): Experience {
  return {
    state: Float32Array.from(r.state),
    action: r.action,
    reward: r.reward,
    nextState: Float32Array.from(r.nextState),
    done: r.done,
    episode: episodeNumber(r),
    stage: r.stage,
  };
}

function schedule(state: State, ctx: ActorContext, ms: number): void {
  state.timer = setTimeout(() => ctx.send('experience-feed', { type: 'poll' }), ms);
  state.timer.unref();
}

export default defineActor<ExperienceFeedMessage, State>({
  name: 'experience-feed',
  init(ctx) {
    const url = ctx.config.database.url;
    if (!url) throw new Error('the experience feed needs database.url (or DATABASE_URL)');
    const buffer = ctx.shared.replay;
    if (!buffer) throw new Error('the experience feed needs the shared replay storage ("replay")');
    const state: State = {
      pool: createPool(url, ctx.log, 2),
      replay: new ReplayStorage(buffer),
      timer: undefined,
      consumed: 0,
      appended: 0,
      lastId: 0,
      rehearsed: 0,
      errors: 0,
    };
    schedule(state, ctx, 0);
    return state;
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case 'poll': {
        let got = 0;
        let firstId = 0;
        try {
          got = await consumeExperiences(
            state.pool,
            LEARNER_CURSOR,
            ctx.config.cluster.batchRows,
            (rows) => {
              state.appended += state.replay.append(rows.map(toExperience));
              firstId = rows[0]!.id;
              state.lastId = rows.at(-1)!.id;
            },
          );
          state.consumed += got;
          // Rehearsal (replay.keepOldShare): older rows drawn from the whole history join the
          // new ones, so a share of the replay always remembers what came before.
          const share = ctx.config.replay.keepOldShare;
          if (got > 0 && share > 0) {
            const k = Math.round((got * share) / (1 - share));
            const old = await sampleHistory(state.pool, k, firstId - 1);
            state.rehearsed += state.replay.append(old.map(toExperience));
          }
        } catch (error) {
          state.errors++;
          ctx.log.warn({ err: error }, 'reading experiences failed; retrying');
        }
        // A full batch means more is waiting: read again at once.
        schedule(state, ctx, got >= ctx.config.cluster.batchRows ? 0 : ctx.config.cluster.pollMs);
        return state;
      }
      default:
        return assertNever(message.type);
    }
  },
  stats: (s) => ({
    consumed: s.consumed,
    appended: s.appended,
    lastId: s.lastId,
    rehearsed: s.rehearsed,
    errors: s.errors,
  }),
  async stop(state) {
    clearTimeout(state.timer);
    await state.pool.end();
  },
});
