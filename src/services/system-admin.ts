// What the Admin service does to a running actor system: deploy a model version from the models
// directory (the inference pool verifies and hot-loads it; the `latest` pointer follows only once
// it serves), roll back to the previous version, and update the configuration (validated, then
// written for the watcher to apply). Operations run one at a time.

import * as grpc from '@grpc/grpc-js';
import type { LoadOptions } from '../config/load.ts';
import type { WardenConfig } from '../config/schema.ts';
import { updateEnvironmentConfig } from '../config/update.ts';
import type { ModelActivated, ModelPublished, ModelRefused } from '../messages/model.ts';
import { listVersions, modelFile, readMetadata, setLatest } from '../models/store.ts';
import { ConfigError } from '../runtime/errors.ts';
import type { ActorSystem } from '../runtime/system.ts';
import { type AdminOperations, type AdminStatus, RefusedOperation } from './admin.ts';
import type { Readiness } from './readiness.ts';

export interface SystemAdminOptions {
  readonly system: ActorSystem;
  /** The configuration the system runs with now. */
  readonly config: () => WardenConfig;
  /**
   * The configuration as its files give it now, which an update is compared with (default:
   * config). `warden start` runs with more than its files say (the reference sandboxes, the
   * embedded database's URL): compared with that, every update would seem to change them.
   */
  readonly fileConfig?: () => WardenConfig;
  readonly configFiles: LoadOptions & { dir: string };
  readonly modelVersion: () => string;
  readonly counters: () => Promise<{
    decisions: number;
    episodesCompleted: number;
    episodesPartial?: number;
  }>;
  readonly startedAt: number;
  readonly timeoutMs?: number;
  /** The /ready probe (services/readiness.ts): its checks go into the status. */
  readonly readiness?: () => Promise<Readiness>;
}

type Outcome = { kind: 'activated'; message: ModelActivated } | { kind: 'refused'; reason: string };

export function systemAdmin(o: SystemAdminOptions): AdminOperations {
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = chain.then(run, run);
    chain = next.catch(() => undefined);
    return next;
  };
  const timeoutMs = o.timeoutMs ?? 30_000;

  /** Sends `message` to the adapter and waits for the pool's answer that `matches`. */
  const awaitModel = (
    send: () => void,
    matches: (m: ModelActivated | ModelRefused) => boolean,
  ): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      const onMessage = ({ message }: { message: { type: string } }) => {
        if (message.type !== 'model-activated' && message.type !== 'model-refused') return;
        const m = message as ModelActivated | ModelRefused;
        if (!matches(m)) return;
        done();
        resolve(
          m.type === 'model-activated'
            ? { kind: 'activated', message: m }
            : { kind: 'refused', reason: m.reason },
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no answer from the inference pool within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        o.system.off('message', onMessage);
      };
      o.system.on('message', onMessage);
      send();
    });

  return {
    async status(): Promise<AdminStatus> {
      const [c, stats, ready] = await Promise.all([
        o.counters(),
        o.system.stats(),
        o.readiness?.(),
      ]);
      const receivers = new Map(
        stats.threads.flatMap((t) => t.actors).map((a) => [a.actor, a.custom ?? {}]),
      );
      return {
        modelVersion: o.modelVersion(),
        environment: o.config().environment,
        decisions: c.decisions,
        episodesCompleted: c.episodesCompleted,
        episodesPartial: c.episodesPartial ?? 0,
        uptimeMs: Date.now() - o.startedAt,
        checks: Object.entries(ready?.checks ?? {}).map(([name, c]) => ({ name, ...c })),
        sandboxes: o.config().sandboxes.map((s) => {
          const r: Record<string, number | undefined> = receivers.get(`receiver:${s.name}`) ?? {};
          return {
            name: s.name,
            address: s.address,
            events: r.events ?? 0,
            rejected: r.rejected ?? 0,
            repeated: r.repeated ?? 0,
            reconnects: r.reconnects ?? 0,
            streamsLost: r.lost ?? 0,
            inFlight: r.inFlight ?? 0,
            pausedMs: r.pausedMs ?? 0,
            throttledMs: r.throttledMs ?? 0,
            maxEventsPerSecond: s.maxEventsPerSecond ?? 0,
            lastBatchMs: r.lastBatchAt ?? 0,
          };
        }),
      };
    },
    deploy: (version) =>
      serial(async () => {
        const dir = o.config().models.dir;
        if (!listVersions(dir).includes(version))
          throw new RefusedOperation(`no model ${version} in ${dir}`, grpc.status.NOT_FOUND);
        const previous = o.modelVersion();
        if (previous === version) return { servingVersion: version, previousVersion: previous };
        let metadata: ModelPublished['metadata'];
        try {
          metadata = readMetadata(dir, version);
        } catch (error) {
          throw new RefusedOperation(`${version}: ${(error as Error).message}`);
        }
        const published: ModelPublished = {
          type: 'model-published',
          metadata,
          path: modelFile(dir, version),
        };
        const outcome = await awaitModel(
          () => o.system.send('adapter', published),
          (m) =>
            m.type === 'model-refused'
              ? m.version === version
              : m.reason === 'hot-reload' && m.version === version,
        );
        if (outcome.kind === 'refused')
          throw new RefusedOperation(`${version} refused by the inference pool: ${outcome.reason}`);
        setLatest(dir, version);
        return { servingVersion: version, previousVersion: previous };
      }),
    rollback: () =>
      serial(async () => {
        const dir = o.config().models.dir;
        const outcome = await awaitModel(
          () => o.system.send('adapter', { type: 'rollback' }),
          (m) => m.type === 'model-activated' && m.reason === 'rollback',
        );
        if (outcome.kind !== 'activated') throw new Error('rollback refused');
        const { version, previousVersion } = outcome.message;
        if (listVersions(dir).includes(version)) setLatest(dir, version);
        return { servingVersion: version, previousVersion: previousVersion ?? '' };
      }),
    updateConfig: (document, dryRun) =>
      serial(async () => {
        try {
          const current = (o.fileConfig ?? o.config)();
          const plan = updateEnvironmentConfig(o.configFiles, current, document, dryRun);
          return plan;
        } catch (error) {
          if (error instanceof ConfigError)
            throw new RefusedOperation(error.message, grpc.status.INVALID_ARGUMENT);
          throw error;
        }
      }),
  };
}
