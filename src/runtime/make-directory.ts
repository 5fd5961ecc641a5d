// Creating a directory and its missing parents, one level at a time. Node's own
// mkdirSync(dir, { recursive: true }) (and fs.promises.mkdir) never returns for a path under
// /proc (node 20: libuv retries the parent, which exists, and the child, which the kernel refuses
// with ENOENT, for ever); a path from the configuration or the command line must get an error.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Makes `dir` and its missing parents; a level the system refuses throws its error. */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let at = resolve(dir); !existsSync(at); at = dirname(at)) {
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level);
    } catch (error) {
      // Made meanwhile by someone else: as good.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
