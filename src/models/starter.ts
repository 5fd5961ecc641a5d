// The bundled starter model: what `warden train` makes of the bundled Oliveira data, shipped so
// that `npm start` on a fresh clone serves a trained policy from its first event instead of the
// rule table (which ranks that data worse than chance). Copied into models.dir only when that
// holds no version at all; everything after that — online learning, held-out checks, exports,
// rollback — treats it as any other version.

import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeDirectory } from '../runtime/make-directory.ts';
import {
  latestVersion,
  listVersions,
  metadataFile,
  modelFile,
  readMetadata,
  setLatest,
} from './store.ts';

export const STARTER_DIR = fileURLToPath(new URL('../../data/starter-model/', import.meta.url));

/**
 * Puts the starter version into `dir` and points `latest` at it when `dir` holds no version and
 * the starter takes states of `stateDim` features; returns that version, or undefined when
 * nothing was copied.
 */
export function seedStarterModel(
  dir: string,
  stateDim: number,
  from: string = STARTER_DIR,
): string | undefined {
  if (listVersions(dir).length > 0) return undefined;
  const version = latestVersion(from);
  if (version === undefined || readMetadata(from, version).stateDim !== stateDim) return undefined;
  makeDirectory(dir);
  copyFileSync(metadataFile(from, version), metadataFile(dir, version));
  copyFileSync(modelFile(from, version), modelFile(dir, version));
  setLatest(dir, version);
  return version;
}
