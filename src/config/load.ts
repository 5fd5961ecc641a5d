// Loads config/default.json, overlays config/<env>.json (env from WARDEN_ENV), then secrets and
// overrides from environment variables; validates field by field (validate.ts).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../runtime/errors.ts';
import { ENVIRONMENTS, type Environment, type WardenConfig } from './schema.ts';
import { type ConfigWarning, validateConfig } from './validate.ts';

export interface LoadedConfig {
  readonly config: WardenConfig;
  readonly warnings: readonly ConfigWarning[];
  /** Files read, in the order they were applied. */
  readonly sources: readonly string[];
}

export interface LoadOptions {
  readonly dir?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Used instead of config/<env>.json (a candidate overlay being validated before it is written). */
  readonly overlay?: unknown;
}

export const DEFAULT_CONFIG_DIR = new URL('../../config/', import.meta.url).pathname;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge where the overlay wins; arrays and scalars are replaced, not merged. */
export function mergeDeep(base: unknown, overlay: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(overlay))
    return overlay === undefined ? base : overlay;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    out[key] = mergeDeep(base[key], value);
  }
  return out;
}

function readJson(path: string, required: boolean): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read configuration file ${path}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `configuration file ${path} is not valid JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

export function resolveEnvironment(env: NodeJS.ProcessEnv): {
  environment: Environment;
  warning?: ConfigWarning;
} {
  const name = env.WARDEN_ENV ?? 'dev';
  if ((ENVIRONMENTS as readonly string[]).includes(name))
    return { environment: name as Environment };
  return {
    environment: 'dev',
    warning: { field: 'WARDEN_ENV', message: `unknown environment "${name}"; using "dev"` },
  };
}

/** Secrets and operator overrides that come from the environment, never from files. */
function environmentOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  if (env.DATABASE_URL) overrides.database = { url: env.DATABASE_URL };
  if (env.WARDEN_LOG_LEVEL) overrides.logging = { level: env.WARDEN_LOG_LEVEL };
  return overrides;
}

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const dir = options.dir ?? DEFAULT_CONFIG_DIR;
  const env = options.env ?? process.env;
  const { environment, warning } = resolveEnvironment(env);
  const sources: string[] = [];
  const basePath = join(dir, 'default.json');
  const base = readJson(basePath, true);
  sources.push(basePath);
  const overlayPath = join(dir, `${environment}.json`);
  const overlay =
    options.overlay !== undefined ? structuredClone(options.overlay) : readJson(overlayPath, false);
  if (overlay !== undefined) sources.push(overlayPath);

  // A database URL in a file would be a secret at rest: files may not set it.
  const fileWarnings: ConfigWarning[] = [];
  for (const [path, doc] of [
    [basePath, base],
    [overlayPath, overlay],
  ] as const) {
    const db = isPlainObject(doc) && isPlainObject(doc.database) ? doc.database : undefined;
    if (db && db.url !== undefined && db.url !== null) {
      fileWarnings.push({
        field: 'database.url',
        message: `ignored in ${path}: set DATABASE_URL instead`,
      });
      delete db.url;
    }
  }

  const merged = mergeDeep(mergeDeep(base, overlay ?? {}), {
    ...environmentOverrides(env),
    environment,
  });
  const { config, warnings } = validateConfig(merged);
  return {
    config,
    warnings: [...(warning ? [warning] : []), ...fileWarnings, ...warnings],
    sources,
  };
}
