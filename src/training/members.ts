// Ensemble members for distillation (`warden train --members K`): K independent training runs
// of train(), seeds seed … seed + K − 1, each on a worker thread of its own, by default all at
// once: with 3 members on 2 cores that takes 1.5 runs' time, against 2 for two at a time and
// then the third (each run is one thread's work). One member runs in the calling thread.

import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../runtime/spawn.ts';
import { type TrainOptions, type TrainPoint, type TrainResult, train } from './train.ts';

const ENTRY = new URL('./member-worker.ts', import.meta.url);

/** What a member's worker receives: train()'s options without the callbacks. */
export interface MemberInit {
  readonly options: Omit<TrainOptions, 'onProgress' | 'log'>;
}

export type MemberMessage =
  | { readonly kind: 'progress'; readonly point: TrainPoint }
  | { readonly kind: 'warn'; readonly fields: object; readonly message: string }
  | { readonly kind: 'done'; readonly result: TrainResult }
  | { readonly kind: 'failed'; readonly message: string };

export interface MembersOptions extends Omit<TrainOptions, 'seed' | 'onProgress'> {
  readonly members: number;
  /** The first member's seed; member k has seed + k. */
  readonly seed: number;
  /** Members training at once (default all); each holds its own replay storage. */
  readonly parallel?: number;
  readonly onProgress?: (member: number, point: TrainPoint) => void;
}

export async function trainMembers(o: MembersOptions): Promise<TrainResult[]> {
  const { members, seed, parallel, onProgress, log, ...options } = o;
  if (members === 1)
    return [
      await train({
        ...options,
        seed,
        ...(onProgress ? { onProgress: (p: TrainPoint) => onProgress(0, p) } : {}),
        ...(log ? { log } : {}),
      }),
    ];
  const results: TrainResult[] = new Array(members);
  const running = new Set<Worker>();
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < members && !failed) {
      const member = next++;
      try {
        results[member] = await runMember(
          { options: { ...options, seed: seed + member } },
          member,
          o,
          running,
        );
      } catch (err) {
        // One member failing fails the whole run: the others stop instead of training on.
        failed = true;
        for (const w of running) void w.terminate();
        throw err;
      }
    }
  };
  const lanes = Math.max(1, Math.min(members, parallel ?? members));
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}

function runMember(
  init: MemberInit,
  member: number,
  o: MembersOptions,
  running: Set<Worker>,
): Promise<TrainResult> {
  return new Promise((resolve, reject) => {
    const worker = spawnWorker(ENTRY, init, `warden:train-member-${member + 1}`);
    running.add(worker);
    let result: TrainResult | undefined;
    let failure: Error | undefined;
    worker.on('message', (m: MemberMessage) => {
      if (m.kind === 'progress') o.onProgress?.(member, m.point);
      else if (m.kind === 'warn') o.log?.warn({ ...m.fields, member: member + 1 }, m.message);
      else if (m.kind === 'done') result = m.result;
      else failure = new Error(`training member ${member + 1} failed: ${m.message}`);
    });
    worker.once('error', (err) => {
      failure ??= new Error(`training member ${member + 1} crashed: ${err.message}`);
    });
    worker.once('exit', (code) => {
      running.delete(worker);
      if (result) resolve(result);
      else reject(failure ?? new Error(`training member ${member + 1} exited with code ${code}`));
    });
  });
}
