// One inference worker thread: takes whatever requests wait in its ring as one batch (up to
// maxBatch, optionally waiting maxWaitUs for more), runs one ONNX Runtime inference with the
// version ACTIVE_VERSION names (or the rule table), and answers each request in its response
// ring. Model sessions are prepared on request of the pool (comlink) beside the serving one.

import { createPublicKey } from 'node:crypto';
import type { MessagePort } from 'node:worker_threads';
import { expose } from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import {
  closeLogOutput,
  componentLogger,
  configureLogOutput,
  type LogOutput,
} from '../../runtime/logger.ts';
import { SpscRing } from '../../runtime/shared/spsc-ring.ts';
import { argmaxQ, chooseAction, confidenceOf } from './decide.ts';
import {
  CTRL_ACTIVE,
  REQ_ID,
  REQ_STATE,
  RES_ACTION,
  RES_CONFIDENCE,
  RES_ID,
  RES_Q,
  RES_SOURCE,
  RES_VERSION,
  RULES_VERSION,
  SOURCE,
} from './layout.ts';
import { OnnxPolicy } from './onnx-policy.ts';
import { rulePolicy } from './rules.ts';

export interface InferenceWorkerInit {
  readonly index: number;
  readonly dim: number;
  readonly requests: SharedArrayBuffer;
  readonly responses: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly controlPort: MessagePort;
  readonly maxBatch: number;
  readonly maxWaitUs: number;
  readonly epsilon: number;
  readonly verdictMargin: number;
  readonly decisionLogSample: number;
  readonly decisionLogLevel: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly logLevel: string;
  readonly logOutput: LogOutput;
}

/** What the pool knows of a model's provenance; the key travels as PEM text. */
export interface Provenance {
  readonly publicKeyPem: string;
  readonly signature: string | null;
  readonly requireSignature: boolean;
}

export interface InferenceWorkerControl {
  /** Loads and probes a model beside the serving one; throws a ModelLoadError on any defect. */
  prepare(
    versionId: number,
    path: string,
    sha256: string | undefined,
    provenance?: Provenance,
  ): Promise<void>;
  release(versionId: number): Promise<void>;
  configure(settings: {
    maxBatch: number;
    maxWaitUs: number;
    epsilon: number;
    verdictMargin: number;
    decisionLogSample: number;
  }): void;
  stats(): { batches: number; decisions: number; maxBatchSeen: number; sessions: number[] };
  stop(): Promise<void>;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

export async function main(init: InferenceWorkerInit): Promise<void> {
  await configureLogOutput(init.logOutput, `inference-${init.index}`);
  const log = componentLogger('actor:inference', { worker: init.index });
  log.level = init.logLevel;
  const requests = new SpscRing(init.requests);
  const responses = new SpscRing(init.responses);
  const control = new Int32Array(init.control);
  const sessions = new Map<number, OnnxPolicy>();
  const rules = rulePolicy(init.dim);
  let settings = {
    maxBatch: init.maxBatch,
    maxWaitUs: init.maxWaitUs,
    epsilon: init.epsilon,
    verdictMargin: init.verdictMargin,
    decisionLogSample: init.decisionLogSample,
  };
  let states = new Float32Array(settings.maxBatch * init.dim);
  let ids = new Int32Array(settings.maxBatch);
  let stopped = false;
  let decisions = 0;
  let batches = 0;
  let maxBatchSeen = 0;

  const api: InferenceWorkerControl = {
    async prepare(versionId, path, sha256, provenance) {
      if (sessions.has(versionId)) return;
      const check = provenance
        ? {
            publicKey: createPublicKey(provenance.publicKeyPem),
            signature: provenance.signature,
            requireSignature: provenance.requireSignature,
          }
        : undefined;
      sessions.set(versionId, await OnnxPolicy.load(path, init.dim, 6, sha256, check));
    },
    async release(versionId) {
      const s = sessions.get(versionId);
      sessions.delete(versionId);
      await s?.release();
    },
    configure(next) {
      settings = next;
      if (states.length < next.maxBatch * init.dim) {
        states = new Float32Array(next.maxBatch * init.dim);
        ids = new Int32Array(next.maxBatch);
      }
    },
    stats: () => ({ batches, decisions, maxBatchSeen, sessions: [...sessions.keys()] }),
    async stop() {
      stopped = true;
      requests.close();
      await loopDone; // the loop has left session.run and released every session
      closeLogOutput();
    },
  };
  expose(api, nodeEndpoint(init.controlPort));

  const dim = init.dim;
  const readInto = (i: number, i32: Int32Array, f32: Float32Array, off: number) => {
    ids[i] = i32[off + REQ_ID]!;
    states.set(f32.subarray(off + REQ_STATE, off + REQ_STATE + dim), i * dim);
  };

  let finishLoop: () => void = () => undefined;
  const loopDone = new Promise<void>((resolve) => {
    finishLoop = resolve;
  });
  let lastYield = nowUs();
  while (!stopped) {
    // Never answer with a version this worker has not loaded (a respawned worker is still
    // preparing it): requests wait in the ring for the moment it takes.
    const active = Atomics.load(control, CTRL_ACTIVE);
    if (active !== RULES_VERSION && !sessions.has(active)) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    let n = requests.drain(settings.maxBatch, (i, i32, f32, off) => readInto(i, i32, f32, off));
    if (n === 0) {
      // Block briefly (Atomics.wait: no spinning when idle), then let control messages in.
      const waited = requests.waitForData(5);
      if (waited !== 'ready' || nowUs() - lastYield > 5_000) {
        lastYield = nowUs();
        await new Promise((r) => setImmediate(r));
      }
      continue;
    }
    if (n < settings.maxBatch && settings.maxWaitUs > 0) {
      const until = nowUs() + settings.maxWaitUs;
      while (n < settings.maxBatch && nowUs() < until) {
        n += requests.drain(settings.maxBatch - n, (i, i32, f32, off) =>
          readInto(n + i, i32, f32, off),
        );
      }
    }
    // The version is read once per batch: a swap takes effect between batches, never inside one.
    const version = Atomics.load(control, CTRL_ACTIVE);
    const session = version === RULES_VERSION ? undefined : sessions.get(version);
    let q: Float32Array;
    let source: number = SOURCE.model;
    if (session) {
      try {
        q = await session.qValues(states, n);
      } catch (error) {
        log.error(
          { err: error, version },
          'inference failed; this batch is answered by the rule-based policy',
        );
        q = new Float32Array(n * 6);
        source = SOURCE.rules;
      }
    } else {
      q = new Float32Array(n * 6);
      source = SOURCE.rules;
    }
    if (source === SOURCE.rules) {
      for (let i = 0; i < n; i++) q.set(rules(states, i * dim).qValues, i * 6);
    }
    const answered = n;
    let written = 0;
    while (written < answered) {
      written += responses.pushBatch(answered - written, (k, i32, f32, off) => {
        const i = written + k;
        let action: number =
          source === SOURCE.rules
            ? argmaxQ(q, i * 6)
            : chooseAction(q, i * 6, settings.verdictMargin);
        let src = source;
        if (settings.epsilon > 0 && Math.random() < settings.epsilon) {
          action = Math.floor(Math.random() * 6);
          src = SOURCE.exploration;
        }
        i32[off + RES_ID] = ids[i]!;
        i32[off + RES_ACTION] = action;
        i32[off + RES_VERSION] = source === SOURCE.rules ? RULES_VERSION : version;
        i32[off + RES_SOURCE] = src;
        f32[off + RES_CONFIDENCE] = confidenceOf(q, i * 6, action);
        for (let a = 0; a < 6; a++) f32[off + RES_Q + a] = q[i * 6 + a]!;
        if (settings.decisionLogSample > 0 && Math.random() < settings.decisionLogSample) {
          log[init.decisionLogLevel](
            {
              requestId: ids[i],
              action,
              confidence: f32[off + RES_CONFIDENCE],
              version,
              source: src,
            },
            'decision',
          );
        }
      });
      if (written < answered) responses.waitForSpace(10);
    }
    decisions += answered;
    batches++;
    if (answered > maxBatchSeen) maxBatchSeen = answered;
  }
  for (const s of sessions.values()) await s.release();
  sessions.clear();
  finishLoop();
}
