// The PatternQuery gRPC service (proto/warden/patterns/v1/patterns.proto) over the pattern
// queries and the episode history (db/episodes.ts), and its client. Served by services/server.ts
// beside Admin; every method needs `read`. Requests are validated (limits, vector size) before
// any SQL runs; a bad request gets INVALID_ARGUMENT, a database failure UNAVAILABLE — the server
// never crashes.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type pg from 'pg';
import { type EpisodeRow, queryEpisodes } from '../db/episodes.ts';
import { byAttackType, byTimeRange, nearest, type PatternRow } from '../db/patterns.ts';
import type { Logger } from '../runtime/logger.ts';
import { FieldCipher } from '../security/field-crypto.ts';
import { type ClientOptions, serviceClient } from './client.ts';

export const PATTERNS_PROTO = new URL(
  '../../proto/warden/patterns/v1/patterns.proto',
  import.meta.url,
).pathname;

const definition = () =>
  protoLoader.loadSync(PATTERNS_PROTO, {
    keepCase: false,
    longs: Number,
    enums: Number,
    defaults: true,
    oneofs: true,
  });

// biome-ignore lint/suspicious/noExplicitAny: grpc-js's loaded package is untyped
const servicePackage = () => (grpc.loadPackageDefinition(definition()) as any).warden.patterns.v1;

const MAX_LIMIT = 10_000;
const MAX_K = 1_000;
const MAX_EPISODES = 1_000;
const MAX_EPISODES_WITH_STEPS = 100;

const toWire = (r: PatternRow, cipher: FieldCipher = FieldCipher.none()) => ({
  patternId: r.patternId,
  features: r.features,
  action: r.action,
  reward: r.reward,
  attackType: cipher.reveal('attackType', r.attackType),
  confidence: r.confidence,
  createdAtMs: r.createdAt.getTime(),
  modelVersion: r.modelVersion,
  episodeId: cipher.reveal('episodeId', r.episodeId),
  stage: r.stage,
  distance: r.distance ?? 0,
  score: r.score ?? 0,
});

const episodeToWire = (r: EpisodeRow, cipher: FieldCipher = FieldCipher.none()) => ({
  episodeId: cipher.reveal('episodeId', r.episodeId),
  artifactHash: r.artifactHash === null ? '' : cipher.reveal('artifactHash', r.artifactHash),
  label: r.label,
  partial: r.partial,
  failureReason: r.failureReason === null ? '' : cipher.reveal('failureReason', r.failureReason),
  modelVersion: r.modelVersion,
  totalReward: r.totalReward,
  transitions: r.transitions,
  startedAtMs: r.startedAt.getTime(),
  endedAtMs: r.endedAt.getTime(),
  stages: r.stages,
  steps: r.steps,
});

class BadRequest extends Error {}

function handler<Req, Reply>(log: Logger, what: string, run: (req: Req) => Promise<Reply>) {
  return (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    run(call.request)
      .then((reply) => callback(null, reply))
      .catch((error: Error) => {
        const invalid = error instanceof BadRequest;
        if (!invalid) log.error({ err: error }, `${what} query failed`);
        callback({
          code: invalid ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE,
          details: invalid ? error.message : `${what} store unavailable`,
        });
      });
  };
}

/** A query's pattern rows as the reply. */
const patterns =
  <Req>(cipher: FieldCipher, run: (req: Req) => Promise<PatternRow[]>) =>
  async (req: Req) => ({ patterns: (await run(req)).map((r) => toWire(r, cipher)) });

const limitOf = (v: number | undefined, def: number, max: number) => {
  const n = v && v > 0 ? v : def;
  if (n > max) throw new BadRequest(`limit ${n} exceeds ${max}`);
  return n;
};

export const PATTERN_METHODS = {
  byAttackType: '/warden.patterns.v1.PatternQuery/ByAttackType',
  byTimeRange: '/warden.patterns.v1.PatternQuery/ByTimeRange',
  nearest: '/warden.patterns.v1.PatternQuery/Nearest',
  episodes: '/warden.patterns.v1.PatternQuery/Episodes',
} as const;

export interface EpisodesRequest {
  readonly episodeId?: string;
  readonly artifactHash?: string;
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly limit?: number;
  readonly steps?: boolean;
}

export function patternQueryService(
  db: pg.Pool,
  log: Logger,
  cipher: FieldCipher = FieldCipher.none(),
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  return {
    definition: servicePackage().PatternQuery.service,
    implementation: {
      byAttackType: handler(
        log,
        'pattern',
        patterns(cipher, async (r: { attackType: string; limit: number }) => {
          if (!r.attackType || r.attackType.length > 256)
            throw new BadRequest('attack_type must be 1–256 characters');
          return byAttackType(
            db,
            cipher.lookupForms('attackType', r.attackType),
            limitOf(r.limit, 100, MAX_LIMIT),
          );
        }),
      ),
      byTimeRange: handler(
        log,
        'pattern',
        patterns(cipher, async (r: { fromMs: number; toMs: number; limit: number }) => {
          if (!Number.isFinite(r.fromMs) || !Number.isFinite(r.toMs) || r.toMs <= r.fromMs)
            throw new BadRequest('need from_ms < to_ms');
          return byTimeRange(
            db,
            new Date(r.fromMs),
            new Date(r.toMs),
            limitOf(r.limit, 100, MAX_LIMIT),
          );
        }),
      ),
      nearest: handler(
        log,
        'pattern',
        patterns(cipher, async (r: { features: number[]; k: number }) => {
          if (
            r.features.length === 0 ||
            r.features.length > 100 ||
            !r.features.every(Number.isFinite)
          ) {
            throw new BadRequest('features must hold 1–100 finite values');
          }
          return nearest(db, r.features, limitOf(r.k, 10, MAX_K));
        }),
      ),
      episodes: handler(log, 'episode', async (r: Required<EpisodesRequest>) => {
        if (r.episodeId && r.artifactHash)
          throw new BadRequest('ask for an episode_id or an artifact_hash, not both');
        for (const [name, v] of [
          ['episode_id', r.episodeId],
          ['artifact_hash', r.artifactHash],
        ] as const)
          if (v.length > 1024) throw new BadRequest(`${name} is longer than 1024 characters`);
        const bound = (ms: number) => {
          if (!Number.isFinite(ms) || ms < 0) throw new BadRequest('from_ms and to_ms must be ≥ 0');
          return ms > 0 ? new Date(ms) : undefined;
        };
        const from = bound(r.fromMs);
        const to = bound(r.toMs);
        if (from && to && to <= from) throw new BadRequest('need from_ms < to_ms');
        const rows = await queryEpisodes(db, {
          ...(r.episodeId ? { episodeIds: cipher.lookupForms('episodeId', r.episodeId) } : {}),
          ...(r.artifactHash
            ? { artifactHashes: cipher.lookupForms('artifactHash', r.artifactHash) }
            : {}),
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          limit: limitOf(r.limit, 20, r.steps ? MAX_EPISODES_WITH_STEPS : MAX_EPISODES),
          steps: r.steps,
        });
        return { episodes: rows.map((e) => episodeToWire(e, cipher)) };
      }),
    },
  };
}

export interface PatternQueryClient {
  byAttackType(attackType: string, limit?: number): Promise<ReturnType<typeof toWire>[]>;
  byTimeRange(fromMs: number, toMs: number, limit?: number): Promise<ReturnType<typeof toWire>[]>;
  nearest(features: number[], k?: number): Promise<ReturnType<typeof toWire>[]>;
  episodes(request: EpisodesRequest): Promise<ReturnType<typeof episodeToWire>[]>;
  close(): void;
}

export function patternQueryClient(
  address: string,
  options: ClientOptions = {},
): PatternQueryClient {
  const { client, call } = serviceClient(servicePackage().PatternQuery, address, {
    deadlineMs: 5_000,
    ...options,
  });
  const rows = (method: string, req: object) =>
    call<{ patterns: ReturnType<typeof toWire>[] }>(method, req).then((r) => r.patterns);
  return {
    byAttackType: (attackType, limit = 100) => rows('byAttackType', { attackType, limit }),
    byTimeRange: (fromMs, toMs, limit = 100) => rows('byTimeRange', { fromMs, toMs, limit }),
    nearest: (features, k = 10) => rows('nearest', { features, k }),
    episodes: (request) =>
      call<{ episodes: ReturnType<typeof episodeToWire>[] }>('episodes', request).then(
        (r) => r.episodes,
      ),
    close: () => client.close(),
  };
}
