// Entry file of every Warden worker thread: imports workerData.entry and calls its `main` with
// workerData.init. TypeScript entries go through tsx's loader, so the same entry works under
// tests and in production; a compiled .js entry skips the loader.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
const entry = await import(workerData.entry);
await entry.main(workerData.init);
