// Hot reload (9.4): watches the configuration directory, re-validates on change, and reports what
// was applied and what needs a restart. Restart-only fields keep their running values.

import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { ConfigError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { type LoadedConfig, type LoadOptions, loadConfig } from './load.ts';
import type { WardenConfig } from './schema.ts';
import {
  type ConfigWarning,
  changedFields,
  needsRestart,
  restartOnlyFields,
  strictWarnings,
} from './validate.ts';

export interface ConfigChange {
  readonly config: WardenConfig;
  readonly applied: readonly string[];
  readonly requiresRestart: readonly string[];
  readonly warnings: readonly ConfigWarning[];
}

/** What an operator watches (metrics): is the configuration on disk the one that runs? */
export interface ConfigStatus {
  /** Fields of the last configuration read that fell back to their defaults (invalid or unknown). */
  readonly defaulted: readonly string[];
  /** Fields changed on disk that keep their running value until a restart. */
  readonly restartPending: readonly string[];
  /**
   * Reloads that could not read the files at all, or whose security or sandbox settings were
   * invalid (the running configuration stayed).
   */
  readonly reloadFailures: number;
}

export interface ConfigWatcherEvents {
  change: [ConfigChange];
  error: [Error];
}

const RESTART_ONLY = new Set(restartOnlyFields());

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys.at(-1)!] = structuredClone(value);
}

function getPath(source: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((n, k) => (n as Record<string, unknown>)?.[k], source);
}

/** Splits a newly loaded config into what applies now and what waits for a restart. */
export function planChange(
  current: WardenConfig,
  next: WardenConfig,
): Omit<ConfigChange, 'warnings'> {
  const changed = changedFields(current, next);
  const applied = changed.filter((f) => !needsRestart(f, RESTART_ONLY));
  const requiresRestart = changed.filter((f) => needsRestart(f, RESTART_ONLY));
  const config = structuredClone(current) as unknown as Record<string, unknown>;
  for (const field of applied) setPath(config, field, getPath(next, field));
  return { config: config as unknown as WardenConfig, applied, requiresRestart };
}

export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  #current: WardenConfig;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #options: LoadOptions & { dir: string };
  readonly #log: Logger;
  readonly #debounceMs: number;
  #defaulted: readonly string[];
  #restartPending: readonly string[] = [];
  #reloadFailures = 0;

  constructor(
    initial: LoadedConfig,
    options: LoadOptions & { dir: string },
    log: Logger,
    debounceMs = 50,
  ) {
    super();
    this.#current = initial.config;
    this.#defaulted = initial.warnings.map((w) => w.field);
    this.#options = options;
    this.#log = log;
    this.#debounceMs = debounceMs;
  }

  get current(): WardenConfig {
    return this.#current;
  }

  get status(): ConfigStatus {
    return {
      defaulted: this.#defaulted,
      restartPending: this.#restartPending,
      reloadFailures: this.#reloadFailures,
    };
  }

  start(): this {
    // Watch the directory, not the files: editors replace files by rename, which ends a file watch.
    this.#watcher = watch(this.#options.dir, { persistent: true }, (_event, name) => {
      if (name !== null && !name.endsWith('.json')) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.reload(), this.#debounceMs);
    });
    this.#watcher.on('error', (error) => this.emit('error', error));
    return this;
  }

  /** Re-reads the files now; returns the change, or undefined when nothing changed or reading failed. */
  reload(): ConfigChange | undefined {
    let loaded: LoadedConfig;
    try {
      loaded = loadConfig(this.#options);
    } catch (error) {
      // A half-written or broken file keeps the running configuration.
      this.#reloadFailures++;
      this.#log.warn(
        { err: error },
        'configuration reload failed; keeping the running configuration',
      );
      this.emit('error', error as Error);
      return undefined;
    }
    for (const w of loaded.warnings) this.#log.warn({ field: w.field }, `config: ${w.message}`);
    // Security and sandbox settings never fall back (as at start): a typo in `sandboxes` would
    // otherwise apply as no sandbox at all, and every stream would be dropped.
    const strict = strictWarnings(loaded.warnings);
    if (strict.length > 0) {
      this.#reloadFailures++;
      this.#defaulted = loaded.warnings.map((w) => w.field);
      const fields = strict.map((w) => w.field);
      this.#log.error(
        { fields },
        'configuration reload refused: security and sandbox settings never fall back to defaults; keeping the running configuration',
      );
      this.emit('error', new ConfigError(`invalid ${fields.join(', ')}: reload refused`));
      return undefined;
    }
    const plan = planChange(this.#current, loaded.config);
    this.#defaulted = loaded.warnings.map((w) => w.field);
    this.#restartPending = plan.requiresRestart;
    if (plan.applied.length === 0 && plan.requiresRestart.length === 0) return undefined;
    this.#current = plan.config;
    const change: ConfigChange = { ...plan, warnings: loaded.warnings };
    this.#log.info(
      { applied: plan.applied, requiresRestart: plan.requiresRestart },
      'configuration reloaded',
    );
    for (const field of plan.requiresRestart) {
      this.#log.warn({ field }, `config: ${field} changed but only takes effect after a restart`);
    }
    this.emit('change', change);
    return change;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
