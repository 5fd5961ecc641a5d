// Worker entry for every actor thread. TypeScript sources are loaded through tsx's loader, so
// the same entry works under tests and in production; a compiled .js entry skips the loader.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
const host = await import(workerData.entry);
await host.runHost(workerData.init);
