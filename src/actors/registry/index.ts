// The registry actor (inference hosts, cluster.role inference): follows the fleet's model
// registry in PostgreSQL. At start it catches up with the latest published version; afterwards
// every NOTIFY brings the next one. Each version is fetched, its bytes checked against the
// checksum, stored in models.dir, and handed to the adapter's inference pool as model-published
// (which verifies the signature when required and hot-loads it).

import type pg from 'pg';
import { fetchModel, latestPublished, listenForModels } from '../../cluster/models.ts';
import { createPool } from '../../db/connect.ts';
import type { ModelPublished } from '../../messages/model.ts';
import {
  latestVersion,
  listVersions,
  modelFile,
  pruneVersions,
  readMetadata,
} from '../../models/store.ts';
import { type ActorContext, assertNever, defineActor } from '../../runtime/actor.ts';

export type RegistryMessage =
  | { readonly type: 'announced'; readonly version: string }
  | { readonly type: 'catch-up' };

declare module '../../runtime/actor.ts' {
  interface Mailboxes {
    registry: RegistryMessage;
  }
}

interface State {
  readonly pool: pg.Pool;
  readonly listener: { close(): Promise<void> };
  /** The newest version handed to the adapter (versions are v<timestamp>: ordered). */
  handed: string | undefined;
  fetched: number;
  refused: number;
}

const newer = (a: string, b: string | undefined) =>
  b === undefined || Number(a.slice(1)) > Number(b.slice(1));

async function take(state: State, ctx: ActorContext, version: string): Promise<void> {
  if (!newer(version, state.handed)) return; // already served, or older than what we have
  const dir = ctx.config.models.dir;
  try {
    const metadata = listVersions(dir).includes(version)
      ? undefined
      : await fetchModel(state.pool, dir, version);
    if (metadata) state.fetched++;
    const published: ModelPublished = {
      type: 'model-published',
      metadata: metadata ?? readMetadata(dir, version),
      path: modelFile(dir, version),
    };
    state.handed = version;
    ctx.send('adapter', published);
    ctx.log.info({ version }, 'model from the registry handed to the inference pool');
    // As on the learner: the oldest beyond models.keepVersions go, never the one latest names.
    pruneVersions(dir, ctx.config.models.keepVersions);
  } catch (error) {
    state.refused++;
    ctx.log.error({ err: error, version }, 'model from the registry refused');
  }
}

export default defineActor<RegistryMessage, State>({
  name: 'registry',
  init(ctx) {
    const url = ctx.config.database.url;
    if (!url) throw new Error('the registry needs database.url (or DATABASE_URL)');
    const state: State = {
      pool: createPool(url, ctx.log, 2),
      listener: listenForModels(
        url,
        ctx.log,
        (version) => ctx.send('registry', { type: 'announced', version }),
        // (Re)connected: anything announced while we were away is caught up with.
        () => ctx.send('registry', { type: 'catch-up' }),
      ),
      handed: latestVersion(ctx.config.models.dir),
      fetched: 0,
      refused: 0,
    };
    return state;
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case 'announced':
        await take(state, ctx, message.version);
        return state;
      case 'catch-up': {
        const latest = await latestPublished(state.pool).catch((error) => {
          ctx.log.warn({ err: error }, 'cannot read the model registry');
          return undefined;
        });
        if (latest) await take(state, ctx, latest);
        return state;
      }
      default:
        return assertNever(message);
    }
  },
  stats: (s) => ({
    fetched: s.fetched,
    refused: s.refused,
    handedTimestamp: s.handed ? Number(s.handed.slice(1)) : 0,
  }),
  async stop(state) {
    await state.listener.close();
    await state.pool.end();
  },
});
