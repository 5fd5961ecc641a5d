// Temporary directories for tests and benchmarks, removed when the process ends: each test file
// (and each bench run) gets one root under the system's temporary directory, and every directory
// asked for is made inside it. Before this, every run left several hundred directories behind —
// embedded PostgreSQL stores, journals, models — and /tmp grew by gigabytes a day.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let root: string | undefined;

/** A fresh directory named `<prefix>XXXXXX`, removed with the rest when the process exits. */
export function tempDir(prefix: string): string {
  if (root === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'warden-tmp-'));
    // Others may pass through (not list): the embedded PostgreSQL runs as its own user when the
    // tests run as root, and its data directory lies inside.
    chmodSync(made, 0o711);
    root = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return mkdtempSync(join(root, prefix));
}
