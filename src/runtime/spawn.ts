// Starts a worker thread on a module of ours (TypeScript or compiled) through worker-boot.mjs.

import { type TransferListItem, Worker } from 'node:worker_threads';

export const WORKER_BOOT = new URL('./worker-boot.mjs', import.meta.url);

/** `entry` must export `main(init)`; `init` is structured-cloned, `transferList` moved. */
export function spawnWorker(
  entry: URL | string,
  init: unknown,
  name: string,
  transferList: TransferListItem[] = [],
): Worker {
  return new Worker(WORKER_BOOT, {
    workerData: { entry: typeof entry === 'string' ? entry : entry.href, init },
    transferList,
    name,
  });
}
