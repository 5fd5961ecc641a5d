// The PatternQuery gRPC service (proto/warden/patterns/v1/patterns.proto) over the pattern
// queries, and its client. Served by services/server.ts beside Admin; every method needs `read`. Requests are validated (limits, vector size) before any SQL runs;
// a bad request gets INVALID_ARGUMENT, a database failure UNAVAILABLE — the server never crashes.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type pg from 'pg';
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

class BadRequest extends Error {}

function handler<Req>(log: Logger, cipher: FieldCipher, run: (req: Req) => Promise<PatternRow[]>) {
  return (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    run(call.request)
      .then((rows) => callback(null, { patterns: rows.map((r) => toWire(r, cipher)) }))
      .catch((error: Error) => {
        const invalid = error instanceof BadRequest;
        if (!invalid) log.error({ err: error }, 'pattern query failed');
        callback({
          code: invalid ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE,
          details: invalid ? error.message : 'pattern store unavailable',
        });
      });
  };
}

const limitOf = (v: number | undefined, def: number, max: number) => {
  const n = v && v > 0 ? v : def;
  if (n > max) throw new BadRequest(`limit ${n} exceeds ${max}`);
  return n;
};

export const PATTERN_METHODS = {
  byAttackType: '/warden.patterns.v1.PatternQuery/ByAttackType',
  byTimeRange: '/warden.patterns.v1.PatternQuery/ByTimeRange',
  nearest: '/warden.patterns.v1.PatternQuery/Nearest',
} as const;

export function patternQueryService(
  db: pg.Pool,
  log: Logger,
  cipher: FieldCipher = FieldCipher.none(),
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  return {
    definition: servicePackage().PatternQuery.service,
    implementation: {
      byAttackType: handler<{ attackType: string; limit: number }>(log, cipher, async (r) => {
        if (!r.attackType || r.attackType.length > 256)
          throw new BadRequest('attack_type must be 1–256 characters');
        return byAttackType(
          db,
          cipher.lookupForms('attackType', r.attackType),
          limitOf(r.limit, 100, MAX_LIMIT),
        );
      }),
      byTimeRange: handler<{ fromMs: number; toMs: number; limit: number }>(
        log,
        cipher,
        async (r) => {
          if (!Number.isFinite(r.fromMs) || !Number.isFinite(r.toMs) || r.toMs <= r.fromMs)
            throw new BadRequest('need from_ms < to_ms');
          return byTimeRange(
            db,
            new Date(r.fromMs),
            new Date(r.toMs),
            limitOf(r.limit, 100, MAX_LIMIT),
          );
        },
      ),
      nearest: handler<{ features: number[]; k: number }>(log, cipher, async (r) => {
        if (
          r.features.length === 0 ||
          r.features.length > 100 ||
          !r.features.every(Number.isFinite)
        ) {
          throw new BadRequest('features must hold 1–100 finite values');
        }
        return nearest(db, r.features, limitOf(r.k, 10, MAX_K));
      }),
    },
  };
}

export interface PatternQueryClient {
  byAttackType(attackType: string, limit?: number): Promise<ReturnType<typeof toWire>[]>;
  byTimeRange(fromMs: number, toMs: number, limit?: number): Promise<ReturnType<typeof toWire>[]>;
  nearest(features: number[], k?: number): Promise<ReturnType<typeof toWire>[]>;
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
    close: () => client.close(),
  };
}
