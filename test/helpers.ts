// Shared test helpers: configuration with overrides, and waiting for system messages.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { hyperParameters } from '../src/actors/learner/hyper-parameters.ts';
import type { SandboxEventsBatch } from '../src/actors/receiver/index.ts';
import { run } from '../src/cli/main.ts';
import { mergeDeep } from '../src/config/load.ts';
import type { WardenConfig } from '../src/config/schema.ts';
import { validateConfig } from '../src/config/validate.ts';
import type { ActionDecision } from '../src/messages/action.ts';
import type { EpisodeStarted } from '../src/messages/episode.ts';
import type { SandboxEvent } from '../src/messages/index.ts';
import { type PackedActions, unpackActions } from '../src/messages/packed-actions.ts';
import { packEvents } from '../src/messages/packed-telemetry.ts';
import type { AttackPattern } from '../src/messages/pattern.ts';
import type { RecordedTrace } from '../src/messages/recorded.ts';
import type { MetadataDraft } from '../src/models/store.ts';
import type { Message } from '../src/runtime/actor.ts';
import type { ActorSystem } from '../src/runtime/system.ts';
import type { ReferenceSandbox } from '../src/sandbox/reference-sandbox.ts';
import { callEvent } from '../src/telemetry/call-event.ts';
import { tempDir } from './temp-dir.ts';

export function testConfig(overrides: Record<string, unknown> = {}): WardenConfig {
  const { config } = validateConfig(
    mergeDeep(
      {
        logging: { level: 'silent' },
        // A test that stops a system must not leave its open stages to the next one's.
        runtime: { supervision: { backoffInitialMs: 10, backoffMaxMs: 50 }, resumeDir: null },
      },
      overrides,
    ),
  );
  return config;
}

export const fixtureActor = (name: string) =>
  new URL(`./fixtures/actors/${name}.ts`, import.meta.url).href;

/** Records every SYSTEM message from the moment it is created; waitFor sees past and future ones. */
export class Inbox {
  readonly messages: (Message & Record<string, unknown>)[] = [];
  #waiters: {
    predicate: (m: Message & Record<string, unknown>) => boolean;
    resolve: (m: Message) => void;
  }[] = [];

  constructor(system: ActorSystem) {
    system.on('message', ({ message }) => {
      const m = message as Message & Record<string, unknown>;
      this.messages.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.predicate(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  waitFor<T = Message & Record<string, unknown>>(
    predicate: (m: Message & Record<string, unknown>) => boolean,
    ms = 10_000,
  ): Promise<T> {
    const found = this.messages.find(predicate);
    if (found) return Promise.resolve(found as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${ms} ms`)), ms);
      this.#waiters.push({
        predicate,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as T);
        },
      });
    });
  }
}

/** A recorded trace of named API calls (stage 1), as the importers would produce it. */
export function recordedTrace(
  id: string,
  label: 'malicious' | 'benign',
  calls: readonly string[],
): RecordedTrace {
  const ctx = {
    sandboxId: 'recorded',
    episodeId: id,
    stage: 1 as const,
    artifactHash: id,
    artifactType: 'exe' as const,
  };
  return {
    episode: {
      type: 'episode',
      episodeId: id,
      label,
      family: null,
      artifactHash: id,
      artifactType: 'exe',
      source: 't',
      sequenceHash: id,
      events: calls.length,
    },
    events: calls.map((c, i) => callEvent(ctx, i, i, c)),
  };
}

/**
 * Runs the CLI with argv, returning its exit code and what it printed; a failure ends with the
 * line and exit code bin/warden.js gives it.
 */
export async function runCli(argv: readonly string[]): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => {
    text += c;
  });
  try {
    const code = await run(['node', 'warden', ...argv], out);
    return { code, text };
  } catch (error) {
    return { code: 1, text: `${text}warden: error: ${(error as Error).message}\n` };
  }
}

/** Polls `probe` every 50 ms until it is truthy or `ms` pass; returns whether it became true. */
/** The pipeline's actors on the threads `warden start` gives them (tests add the learner). */
export const PIPELINE_PLACEMENT = {
  io: ['receiver', 'dispatcher'],
  hot: ['adapter'],
  control: ['episodes', 'db-writer'],
};

/** Configured sandboxes for reference sandboxes listening on these loopback ports. */
export const sandboxesAt = (sandboxes: readonly { name: string }[], ports: readonly number[]) =>
  sandboxes.map((s, i) => ({ name: s.name, address: `127.0.0.1:${ports[i]}` }));

/** Every actor's own stats (and messages handled and pending), by actor name. */
export const actorStats = async (system: ActorSystem) => {
  const stats = await system.stats();
  return Object.fromEntries(
    stats.threads
      .flatMap((t) => t.actors)
      .map((a) => [
        a.actor,
        {
          ...a.custom,
          handled: a.handled,
          ...(a.pending === undefined ? {} : { pending: a.pending }),
        },
      ]),
  ) as Record<string, Record<string, number>>;
};

/** Each reference sandbox's messages all reached its receiver, no more, no less (property 4). */
export function everyMessageArrived(
  t: ExecutionContext,
  stats: Record<string, Record<string, number>>,
  sandboxes: readonly ReferenceSandbox[],
): void {
  for (const sb of sandboxes)
    t.is(
      stats[`receiver:${sb.name}`]?.events,
      sb.stats.eventsSent + sb.stats.lifecycleSent,
      `${sb.name}: every message arrived, no more, no less`,
    );
}

export async function until(probe: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return await probe();
}

/** Metadata for a model exported in a test: the configured hyper-parameters, empty metrics. */
export function modelDraft(): MetadataDraft {
  return {
    hyperParameters: hyperParameters(testConfig()),
    trainingEpisodes: 0,
    metrics: {
      finalLoss: 0,
      averageReward: 0,
      detectionAccuracy: 0,
      falsePositiveRate: 0,
      falseNegativeRate: 0,
    },
    engine: 'test',
  };
}

/**
 * Every action decision the adapter sent to the dispatcher, in arrival order, when a `sink`
 * fixture stands in for the dispatcher (the array fills as the system runs).
 */
export function dispatchedDecisions(system: ActorSystem): ActionDecision[] {
  const decisions: ActionDecision[] = [];
  system.on('message', ({ message }) => {
    const m = message as unknown as { type: string; actor: string; message: PackedActions };
    if (m.type === 'sunk' && m.actor === 'dispatcher' && m.message.type === 'packed-actions')
      decisions.push(...unpackActions(m.message));
  });
  return decisions;
}

/** A stage starting now for an uncleaned executable (the artifact fields tests do not vary). */
export function episodeStarted(base: {
  sandboxId: string;
  episodeId: string;
  stage: 1 | 2;
}): EpisodeStarted {
  return {
    type: 'episode-started',
    ...base,
    timestamp: Date.now(),
    artifactHash: 'h',
    artifactType: 'exe',
    cleaned: false,
  };
}

/** Events as a receiver hands them to the adapter, arriving now. */
export function sandboxBatch(sandbox: string, events: readonly SandboxEvent[]): SandboxEventsBatch {
  return {
    type: 'sandbox-events',
    sandbox,
    receivedAt: performance.timeOrigin + performance.now(),
    ...packEvents(events),
  };
}

/**
 * A temporary directory for a `warden start` / `run` child process: `config/default.json` puts the
 * embedded database, journal and models inside it, with any port the system picks; `extra` goes
 * over that. Returns the directory and its config directory.
 */
export function tempStartConfig(
  prefix: string,
  extra: Record<string, unknown> = {},
): { dir: string; configDir: string } {
  const dir = tempDir(prefix);
  const configDir = join(dir, 'config');
  mkdirSync(configDir);
  writeFileSync(
    join(configDir, 'default.json'),
    JSON.stringify(
      mergeDeep(
        {
          database: { dataDir: join(dir, 'pg'), journalDir: join(dir, 'journal'), queryPort: 0 },
          runtime: { resumeDir: join(dir, 'resume') },
          metrics: { port: 0 },
          models: { dir: join(dir, 'models') },
        },
        extra,
      ),
    ),
  );
  return { dir, configDir };
}

/** An attack pattern as the episodes actor sends it to the DB writer (fields overridable). */
export const attackPattern = (id: string, over: Partial<AttackPattern> = {}): AttackPattern => ({
  type: 'attack-pattern',
  patternId: id,
  features: [0.1, 0.2, 0.3, 0.4],
  action: 3,
  reward: 1,
  attackType: 'injection',
  confidence: 0.8,
  timestamp: Date.UTC(2026, 0, 1),
  modelVersion: 'v1',
  episodeId: 'ep-1',
  stage: 1,
  ...over,
});

/** Arguments for `node` to run a snippet of TypeScript ES module code (it may import src/ files). */
export const tsSnippet = (code: string): string[] => [
  '--import',
  'tsx',
  '--input-type=module',
  '-e',
  code,
];
