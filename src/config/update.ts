// A configuration update as an operator sends it (Admin.UpdateConfig, `warden config update`):
// the new config/<env>.json is validated strictly — any field that would fall back to its
// default refuses the whole update — and only then written (temporary file + rename, so the
// watcher never reads half a file). The running system's watcher applies it as a hot reload.

import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../runtime/errors.ts';
import { type LoadOptions, loadConfig, resolveEnvironment } from './load.ts';
import type { WardenConfig } from './schema.ts';
import { planChange } from './watch.ts';

export interface UpdatePlan {
  readonly applied: boolean;
  readonly changed: string[];
  readonly restartRequired: string[];
  readonly file: string;
}

export function updateEnvironmentConfig(
  options: LoadOptions & { dir: string },
  current: WardenConfig,
  document: string,
  dryRun: boolean,
): UpdatePlan {
  let overlay: unknown;
  try {
    overlay = JSON.parse(document);
  } catch (error) {
    throw new ConfigError(`not JSON: ${(error as Error).message}`);
  }
  if (typeof overlay !== 'object' || overlay === null || Array.isArray(overlay))
    throw new ConfigError('the document must be a JSON object');
  const loaded = loadConfig({ ...options, overlay });
  if (loaded.warnings.length > 0) {
    throw new ConfigError(
      `refused, nothing applied: ${loaded.warnings.map((w) => `${w.field}: ${w.message}`).join('; ')}`,
    );
  }
  const plan = planChange(current, loaded.config);
  const { environment } = resolveEnvironment(options.env ?? process.env);
  const file = join(options.dir, `${environment}.json`);
  if (!dryRun) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(overlay, null, 2)}\n`);
    renameSync(tmp, file);
  }
  return {
    applied: !dryRun,
    changed: [...plan.applied, ...plan.requiresRestart],
    restartRequired: [...plan.requiresRestart],
    file,
  };
}
