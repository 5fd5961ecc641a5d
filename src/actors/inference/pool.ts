// The inference pool, seen from the thread that feeds it (the adapter; tests and benches use the
// main thread): spawns the workers, writes state vectors into their request rings, reads answers
// from their response rings, and manages model versions — load the latest at start (sha256
// checked), fall back to the rule table with an alert when no valid model exists, hot reload and
// roll back with one atomic switch seen by every worker between two batches.

import { readFileSync } from 'node:fs';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { type Remote, releaseProxy, wrap } from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { WardenConfig } from '../../config/schema.ts';
import type { DecisionSource } from '../../messages/action.ts';
import { ACTION_COUNT, type ActionId } from '../../messages/action.ts';
import { metadataFile, modelFile, readMetadata, versionsToTry } from '../../models/store.ts';
import { componentLogger, type Logger } from '../../runtime/logger.ts';
import { RestartPolicy } from '../../runtime/restart-policy.ts';
import { SpscRing } from '../../runtime/shared/spsc-ring.ts';
import { spawnWorker } from '../../runtime/spawn.ts';
import {
  CONTROL_WORDS,
  CTRL_ACTIVE,
  REQ_ID,
  REQ_STATE,
  RES_ACTION,
  RES_CONFIDENCE,
  RES_ID,
  RES_Q,
  RES_SOURCE,
  RES_VERSION,
  RESPONSE_SLOT_WORDS,
  RULES_VERSION,
  requestSlotWords,
  SOURCE_NAMES,
} from './layout.ts';
import type { InferenceWorkerControl, InferenceWorkerInit, Provenance } from './worker.ts';

const WORKER = new URL(
  `./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

export interface PoolDecision {
  readonly requestId: number;
  readonly action: ActionId;
  readonly qValues: Float32Array;
  readonly confidence: number;
  /** "rules" when the rule-based policy answered. */
  readonly modelVersion: string;
  readonly source: DecisionSource;
}

export interface ModelAlert {
  readonly reason: 'missing' | 'corrupt' | 'checksum' | 'shape' | 'signature' | 'load';
  readonly message: string;
  readonly version?: string;
}

export const copyDecision = (d: PoolDecision): PoolDecision => ({
  ...d,
  qValues: d.qValues.slice(),
});

const powerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(2, n)));

function classify(error: unknown): ModelAlert['reason'] {
  const m = String((error as Error)?.message ?? error);
  if (/sha256/.test(m)) return 'checksum';
  if (/signature|unsigned|publicKey/.test(m)) return 'signature';
  if (/does not fit|inputs and|outputs/.test(m)) return 'shape';
  if (/cannot load|protobuf|parse/i.test(m)) return 'corrupt';
  if (/no readable metadata|cannot read/.test(m)) return 'missing';
  return 'load';
}

export class InferencePool {
  readonly dim: number;
  readonly workers: number;
  readonly #config: WardenConfig;
  readonly #log: Logger;
  readonly #control: Int32Array;
  readonly #requests: SpscRing[] = [];
  readonly #responses: SpscRing[] = [];
  readonly #threads: Worker[] = [];
  readonly #policies: RestartPolicy[] = [];
  /** How each loaded version was prepared, so a restarted worker can prepare it again. */
  readonly #prepared = new Map<
    number,
    { path: string; sha: string | undefined; provenance: Provenance | undefined }
  >();
  /** Worker restarts (supervision). */
  restarts = 0;
  readonly #respawns = new Set<Promise<void>>();
  readonly #remotes: Remote<InferenceWorkerControl>[] = [];
  /** version id ↔ version name; id 0 is the rule table. */
  readonly #versions = new Map<number, string>([[RULES_VERSION, 'rules']]);
  #nextVersionId = 1;
  #history: number[] = [];
  /** Version ids whose sessions the workers hold. */
  readonly #loaded = new Set<number>();
  #next = 0;
  readonly alerts: ModelAlert[] = [];
  #pending = new Map<number, (d: PoolDecision) => void>();
  #nextRequestId = 1;
  #pumping = false;
  #closed = false;

  private constructor(config: WardenConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.dim = config.telemetry.stateDim;
    this.workers = config.inference.workers;
    this.#control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  }

  static async start(
    config: WardenConfig,
    log: Logger = componentLogger('inference-pool'),
  ): Promise<InferencePool> {
    log.level = config.logging.level;
    const pool = new InferencePool(config, log);
    const cap = powerOfTwo(config.inference.ringCapacity);
    for (let w = 0; w < pool.workers; w++) {
      pool.#requests.push(SpscRing.create(cap, requestSlotWords(pool.dim)));
      pool.#responses.push(SpscRing.create(cap, RESPONSE_SLOT_WORDS));
      pool.#policies.push(new RestartPolicy(config.runtime.supervision));
      pool.#spawn(w);
    }
    await Promise.all(pool.#remotes.map((r) => r.stats()));
    return pool;
  }

  /** Starts (or restarts) worker w on its rings; a restarted worker prepares every loaded version. */
  #spawn(w: number): Worker {
    const config = this.#config;
    const { port1, port2 } = new MessageChannel();
    const init: InferenceWorkerInit = {
      index: w,
      dim: this.dim,
      requests: this.#requests[w]!.buffer,
      responses: this.#responses[w]!.buffer,
      control: this.#control.buffer as SharedArrayBuffer,
      controlPort: port2,
      maxBatch: config.inference.maxBatch,
      maxWaitUs: config.inference.maxWaitUs,
      epsilon: config.inference.epsilon,
      verdictMargin: config.inference.verdictMargin,
      decisionLogSample: config.inference.decisionLogSample,
      decisionLogLevel: config.inference
        .decisionLogLevel as InferenceWorkerInit['decisionLogLevel'],
      logLevel: config.logging.level,
      logOutput: { dir: config.logging.dir, keepDays: config.logging.keepDays },
    };
    const thread = spawnWorker(WORKER, init, `warden:inference-${w}`, [port2]);
    thread.on('error', (error) =>
      this.#log.error({ err: error, worker: w }, 'inference worker failed'),
    );
    thread.once('exit', (code) => void this.#onExit(w, thread, code));
    this.#remotes[w]?.[releaseProxy]();
    this.#threads[w] = thread;
    this.#remotes[w] = wrap<InferenceWorkerControl>(nodeEndpoint(port1));
    return thread;
  }

  /**
   * Supervision: a worker that dies is respawned on the same rings (requests still waiting there
   * are served by the new one; the batch it was running when it died is not answered) and
   * prepares the loaded versions before it serves; a crash loop leaves the other workers serving.
   */
  async #onExit(w: number, thread: Worker, code: number): Promise<void> {
    if (this.#closed || this.#threads[w] !== thread) return;
    const decision = this.#policies[w]!.recordFailure(Date.now());
    this.restarts++;
    if (decision.action === 'give-up') {
      this.#log.error(
        { worker: w, code, failures: decision.failures },
        'inference worker crash loop: not restarted',
      );
      return;
    }
    this.#log.warn(
      { worker: w, code, delayMs: decision.delayMs },
      'inference worker exited; restarting',
    );
    const respawn = (async () => {
      await new Promise((r) => setTimeout(r, decision.delayMs));
      if (this.#closed) return;
      this.#spawn(w);
      const remote = this.#remotes[w]!;
      for (const [id, p] of this.#prepared) {
        if (!this.#loaded.has(id)) continue;
        await remote
          .prepare(id, p.path, p.sha, p.provenance)
          .catch((error) =>
            this.#log.error(
              { err: error, worker: w },
              'restarted worker could not prepare a model',
            ),
          );
      }
    })();
    this.#respawns.add(respawn);
    await respawn;
    this.#respawns.delete(respawn);
  }

  /** Fault injection for tests and drills: kills worker w the hard way (as a crash would). */
  async killWorker(w: number): Promise<void> {
    await this.#threads[w]?.terminate();
  }

  /** The version new batches use ("rules" when the rule table answers). */
  get activeVersion(): string {
    return this.#versions.get(Atomics.load(this.#control, CTRL_ACTIVE)) ?? 'rules';
  }

  versionName(id: number): string {
    return this.#versions.get(id) ?? `unknown-${id}`;
  }

  #alert(alert: ModelAlert): void {
    this.alerts.push(alert);
    // No model yet (a fresh install, before the first export) is expected: a warning. A model
    // that is there but cannot be used is an error.
    this.#log[alert.reason === 'missing' ? 'warn' : 'error'](
      { alert: 'warden_model_unavailable', ...alert },
      `model not usable (${alert.reason}): ${alert.message}; ${this.activeVersion === 'rules' ? 'the rule-based policy answers' : `${this.activeVersion} keeps serving`}`,
    );
  }

  /**
   * Loads the latest model of a models directory. One that cannot be used is alerted, and the
   * newest older version that loads serves instead; the rule table only when none does (4.1, 4.4).
   */
  async loadLatest(dir: string): Promise<string> {
    const versions = versionsToTry(dir);
    if (versions.length === 0) {
      this.#alert({ reason: 'missing', message: `no model in ${dir}` });
      return this.activeVersion;
    }
    for (const version of versions) {
      if (!(await this.activate(dir, version))) continue;
      if (version !== versions[0])
        this.#log.warn(
          { alert: 'warden_model_fallback', version, latest: versions[0] },
          `the latest model, ${versions[0]}, is not usable: ${version}, the newest that is, serves`,
        );
      break;
    }
    return this.activeVersion;
  }

  /**
   * Hot reload (4.5): every worker prepares `version` beside what it serves (they keep serving),
   * then one atomic store switches all of them between two batches. A version that fails to load
   * anywhere is refused with an alert and the current one keeps serving.
   */
  async activate(dir: string, version: string): Promise<boolean> {
    let sha: string | undefined;
    let provenance: Provenance | undefined;
    try {
      const metadata = readMetadata(dir, version);
      sha = metadata.sha256;
      const models = this.#config.models;
      if (models.publicKey !== null) {
        provenance = {
          publicKeyPem: readFileSync(models.publicKey, 'utf8'),
          signature: metadata.signature ?? null,
          requireSignature: models.requireSignature,
        };
      } else if (models.requireSignature) {
        throw new Error('models.requireSignature is set but models.publicKey is not');
      }
    } catch (error) {
      this.#alert({
        reason: 'missing',
        message: `${metadataFile(dir, version)}: ${(error as Error).message}`,
        version,
      });
      return false;
    }
    const id = this.#nextVersionId++;
    try {
      await Promise.all(
        this.#remotes.map((r) => r.prepare(id, modelFile(dir, version), sha, provenance)),
      );
    } catch (error) {
      await Promise.all(this.#remotes.map((r) => r.release(id)));
      this.#alert({ reason: classify(error), message: (error as Error).message, version });
      return false;
    }
    this.#versions.set(id, version);
    this.#prepared.set(id, { path: modelFile(dir, version), sha, provenance });
    const previous = Atomics.exchange(this.#control, CTRL_ACTIVE, id);
    this.#history.push(previous);
    this.#log.info({ version, previous: this.versionName(previous) }, 'model activated');
    this.#loaded.add(id);
    await this.#releaseOlder(id, previous);
    return true;
  }

  /** Rolls back to the version served before the current one (the rule table if none). */
  async rollback(dir: string): Promise<string> {
    const previous = this.#history.pop();
    if (previous === undefined) return this.activeVersion;
    const name = this.versionName(previous);
    if (previous === RULES_VERSION || this.#loaded.has(previous)) {
      // Still loaded in every worker: rolling back is the same single atomic switch.
      Atomics.store(this.#control, CTRL_ACTIVE, previous);
      this.#log.warn({ version: name }, 'rolled back');
    } else {
      await this.activate(dir, name);
      this.#history.pop(); // activate pushed the version we roll back from
    }
    return this.activeVersion;
  }

  /**
   * Keeps the current and the previous version loaded (in-flight batches on the previous one
   * finish on it, and a rollback needs no load); frees every older session.
   */
  async #releaseOlder(current: number, previous: number): Promise<void> {
    for (const id of this.#loaded) {
      if (id === current || id === previous) continue;
      this.#loaded.delete(id);
      this.#prepared.delete(id);
      await Promise.all(this.#remotes.map((r) => r.release(id)));
    }
  }

  /**
   * Producer side: writes a state vector into the least-loaded worker's ring. Returns the request
   * id, or 0 when every ring is full (backpressure: the caller retries, nothing is dropped).
   */
  submit(state: Float32Array, requestId = this.#nextRequestId++): number {
    const n = this.#requests.length;
    for (let k = 0; k < n; k++) {
      const w = (this.#next + k) % n;
      const pushed = this.#requests[w]!.pushBatch(1, (_i, i32, f32, off) => {
        i32[off + REQ_ID] = requestId;
        f32.set(state.subarray(0, this.dim), off + REQ_STATE);
      });
      if (pushed === 1) {
        this.#next = (w + 1) % n;
        return requestId;
      }
    }
    return 0;
  }

  /** Reused by drain(): answers are read without allocating (the consumer runs at the decision rate). */
  readonly #view = {
    requestId: 0,
    action: 0 as ActionId,
    qValues: new Float32Array(ACTION_COUNT),
    confidence: 0,
    modelVersion: 'rules',
    source: 'model' as DecisionSource,
  };

  /**
   * Consumer side: hands every answer waiting in the response rings to `onDecision`. The object
   * passed is reused for the next answer: copy what you keep (copyDecision).
   */
  drain(onDecision: (d: PoolDecision) => void): number {
    let total = 0;
    const v = this.#view;
    for (const ring of this.#responses) {
      total += ring.drain(1 << 16, (_i, i32, f32, off) => {
        v.requestId = i32[off + RES_ID]!;
        v.action = i32[off + RES_ACTION]! as ActionId;
        for (let a = 0; a < ACTION_COUNT; a++) v.qValues[a] = f32[off + RES_Q + a]!;
        v.confidence = f32[off + RES_CONFIDENCE]!;
        v.modelVersion = this.versionName(i32[off + RES_VERSION]!);
        v.source = SOURCE_NAMES[i32[off + RES_SOURCE]!] ?? 'model';
        onDecision(v);
      });
    }
    return total;
  }

  /** Resolves when any response ring may hold answers (or after timeoutMs). */
  async waitForResponses(timeoutMs: number): Promise<void> {
    await Promise.race(this.#responses.map((r) => r.waitForDataAsync(timeoutMs)));
  }

  /** Convenience for callers that want a promise per decision (tests, CLI): submit + pump. */
  decide(state: Float32Array): Promise<PoolDecision> {
    return new Promise((resolve, reject) => {
      const id = this.submit(state);
      if (id === 0) {
        reject(new Error('inference rings are full'));
        return;
      }
      this.#pending.set(id, resolve);
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#pending.size > 0 && !this.#closed) {
        const got = this.drain((d) => {
          const resolve = this.#pending.get(d.requestId);
          this.#pending.delete(d.requestId);
          resolve?.(copyDecision(d));
        });
        if (got === 0) await Promise.race(this.#responses.map((r) => r.waitForDataAsync(5)));
      }
    } finally {
      this.#pumping = false;
    }
  }

  async stats(): Promise<{
    workers: { batches: number; decisions: number; maxBatchSeen: number; sessions: number[] }[];
    activeVersion: string;
    alerts: number;
    restarts: number;
  }> {
    return {
      workers: await Promise.all(this.#remotes.map((r) => r.stats())),
      activeVersion: this.activeVersion,
      alerts: this.alerts.length,
      restarts: this.restarts,
    };
  }

  async configure(config: WardenConfig): Promise<void> {
    const i = config.inference;
    await Promise.all(
      this.#remotes.map((r) =>
        r.configure({
          maxBatch: i.maxBatch,
          maxWaitUs: i.maxWaitUs,
          epsilon: i.epsilon,
          verdictMargin: i.verdictMargin,
          decisionLogSample: i.decisionLogSample,
        }),
      ),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    // Terminating a worker while ONNX Runtime loads a model in it aborts the process: let
    // respawns finish, then ask each worker to stop (its loop exits and releases its sessions).
    await Promise.allSettled(this.#respawns);
    await Promise.allSettled(
      this.#remotes.map((r) =>
        Promise.race([r.stop(), new Promise((res) => setTimeout(res, 5_000))]),
      ),
    );
    for (const r of this.#remotes) r[releaseProxy]();
    await Promise.all(this.#threads.map((t) => t.terminate()));
  }
}
