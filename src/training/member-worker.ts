// Worker-thread entry of one ensemble member (members.ts): runs train() with the member's seed
// and posts its progress and its result back to the thread that started it.

import { parentPort } from 'node:worker_threads';
import type { MemberInit, MemberMessage } from './members.ts';
import { train } from './train.ts';

export async function main(init: MemberInit): Promise<void> {
  const post = (m: MemberMessage, transfer: ArrayBuffer[] = []) =>
    parentPort!.postMessage(m, transfer);
  try {
    const result = await train({
      ...init.options,
      onProgress: (point) => post({ kind: 'progress', point }),
      log: { warn: (fields, message) => post({ kind: 'warn', fields, message }) },
    });
    post({ kind: 'done', result }, [
      ...new Set(result.params.tensors.map((t) => t.buffer as ArrayBuffer)),
    ]);
  } catch (err) {
    post({ kind: 'failed', message: err instanceof Error ? err.message : String(err) });
  }
}
