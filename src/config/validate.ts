// Field-by-field validation against ConfigSchema: an invalid or unknown field never rejects the
// whole file; it falls back to the schema's safe default and yields a warning naming the field (9.3).

import { Kind, type TArray, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type WardenConfig } from './schema.ts';

export interface ConfigWarning {
  readonly field: string;
  readonly message: string;
}

const isObjectSchema = (schema: TSchema): schema is TObject => schema[Kind] === 'Object';
/** A list of objects (the sandboxes): compared entry by entry, field by field. */
const isListOfObjects = (schema: TSchema): schema is TArray<TObject> =>
  schema[Kind] === 'Array' && isObjectSchema((schema as TArray).items);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The schema's safe default; objects are built field by field from their properties' defaults. */
export function defaultOf(schema: TSchema): unknown {
  if (isObjectSchema(schema)) {
    return Object.fromEntries(
      Object.entries(schema.properties).map(([key, child]) => [key, defaultOf(child)]),
    );
  }
  return Value.Create(schema);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * The entries of a list of objects (`sandboxes`) without fields the schema does not know, each
 * one a warning: a misspelt optional field (`maxEventsPerSeconds`, `tsl`) would otherwise pass
 * as if it were not there.
 */
function withoutUnknown(
  schema: TSchema,
  value: unknown,
  path: string,
  warnings: ConfigWarning[],
): unknown {
  if (!isListOfObjects(schema) || !Array.isArray(value)) return value;
  const known = schema.items.properties;
  for (const [i, item] of value.entries()) {
    if (!isPlainObject(item)) continue;
    for (const key of Object.keys(item)) {
      if (key in known || key.startsWith('$')) continue;
      warnings.push({ field: `${path}.${i}.${key}`, message: 'unknown field ignored' });
      delete item[key];
    }
  }
  return value;
}

function validateNode(
  schema: TSchema,
  raw: unknown,
  path: string,
  warnings: ConfigWarning[],
): unknown {
  if (raw === undefined) return defaultOf(schema);
  if (isObjectSchema(schema)) {
    if (!isPlainObject(raw)) {
      warnings.push({
        field: path,
        message: `expected an object, got ${describe(raw)}; using defaults`,
      });
      return defaultOf(schema);
    }
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(schema.properties)) {
      out[key] = validateNode(child, raw[key], path ? `${path}.${key}` : key, warnings);
    }
    for (const key of Object.keys(raw)) {
      if (!(key in schema.properties) && !key.startsWith('$')) {
        warnings.push({ field: path ? `${path}.${key}` : key, message: 'unknown field ignored' });
      }
    }
    return out;
  }
  if (Value.Check(schema, raw)) return withoutUnknown(schema, Value.Clone(raw), path, warnings);
  // Optional fields with defaults inside arrays and unions (e.g. TLS settings) are filled first.
  const filled = Value.Default(schema, Value.Clone(raw));
  if (Value.Check(schema, filled)) return withoutUnknown(schema, filled, path, warnings);
  const first = Value.Errors(schema, raw).First();
  const fallback = defaultOf(schema);
  warnings.push({
    field: path,
    message: `invalid value ${describe(raw)} (${first?.message ?? 'does not match the schema'}); using default ${describe(fallback)}`,
  });
  return fallback;
}

/** Cross-field rules the schema cannot state; each repair is a warning like any other. */
function applyCrossFieldRules(config: WardenConfig, warnings: ConfigWarning[]): void {
  const s = config.runtime.supervision;
  if (s.backoffMaxMs < s.backoffInitialMs) {
    warnings.push({
      field: 'runtime.supervision.backoffMaxMs',
      message: `must be ≥ backoffInitialMs (${s.backoffInitialMs}); using ${s.backoffInitialMs}`,
    });
    s.backoffMaxMs = s.backoffInitialMs;
  }
  const l = config.learning;
  if (l.epsilonEnd > l.epsilonStart) {
    warnings.push({
      field: 'learning.epsilonEnd',
      message: `must be ≤ epsilonStart (${l.epsilonStart}); using ${l.epsilonStart}`,
    });
    l.epsilonEnd = l.epsilonStart;
  }
  const seen = new Map<string, string>();
  for (const [thread, actors] of Object.entries(config.runtime.placement)) {
    const kept: string[] = [];
    for (const actor of actors) {
      const other = seen.get(actor);
      if (other !== undefined) {
        warnings.push({
          field: `runtime.placement.${thread}`,
          message: `actor "${actor}" is already placed in thread "${other}"; ignored here`,
        });
        continue;
      }
      seen.set(actor, thread);
      kept.push(actor);
    }
    config.runtime.placement[thread] = kept;
  }
  // A sandbox is known by its name (its receiver, its intake slot, its actions' client): a second
  // entry of a name would take the first one's place unseen.
  const names = new Set<string>();
  config.sandboxes = config.sandboxes.filter((s, i) => {
    if (!names.has(s.name)) return names.add(s.name);
    warnings.push({
      field: `sandboxes.${i}.name`,
      message: `sandbox "${s.name}" is already configured (an earlier entry); this entry is ignored`,
    });
    return false;
  });
}

export function validateConfig(raw: unknown): { config: WardenConfig; warnings: ConfigWarning[] } {
  const warnings: ConfigWarning[] = [];
  const config = validateNode(ConfigSchema, raw, '', warnings) as WardenConfig;
  applyCrossFieldRules(config, warnings);
  return { config, warnings };
}

/**
 * Dotted paths of the leaf fields marked `restart: true` in the schema. In a list of objects, the
 * list itself (entries added or removed) and each entry's restart fields (`sandboxes.*.address`);
 * an entry's other fields apply live.
 */
export function restartOnlyFields(schema: TSchema = ConfigSchema, path = ''): string[] {
  if (isObjectSchema(schema)) {
    return Object.entries(schema.properties).flatMap(([key, child]) =>
      restartOnlyFields(child, path ? `${path}.${key}` : key),
    );
  }
  const own = (schema as { restart?: boolean }).restart === true ? [path] : [];
  if (isListOfObjects(schema)) return [...own, ...restartOnlyFields(schema.items, `${path}.*`)];
  return own;
}

/** Whether a changed field (`sandboxes.0.address`) is in `restartOnly` (`sandboxes.*.address`). */
export function needsRestart(field: string, restartOnly: ReadonlySet<string>): boolean {
  return restartOnly.has(field) || restartOnly.has(field.replace(/\.\d+(?=\.|$)/g, '.*'));
}

/** Leaf paths whose values differ between two configs (objects compared field by field). */
export function changedFields(
  a: unknown,
  b: unknown,
  schema: TSchema = ConfigSchema,
  path = '',
): string[] {
  if (isObjectSchema(schema) && isPlainObject(a) && isPlainObject(b)) {
    return Object.entries(schema.properties).flatMap(([key, child]) =>
      changedFields(a[key], b[key], child, path ? `${path}.${key}` : key),
    );
  }
  // The same number of entries: what changed within each (`sandboxes.0.maxEventsPerSecond`).
  if (isListOfObjects(schema) && Array.isArray(a) && Array.isArray(b) && a.length === b.length)
    return a.flatMap((x, i) => changedFields(x, b[i], schema.items, `${path}.${i}`));
  return Value.Equal(a, b) ? [] : [path];
}

/**
 * Fields that never fall back silently: a security setting that does not validate (TLS files,
 * authentication, sandbox channels, model verification) stops `warden start` instead of running
 * with a weaker default.
 */
export const STRICT_FIELDS = [
  'security',
  'sandboxes',
  'models.publicKey',
  'models.requireSignature',
];

export function strictWarnings(warnings: readonly ConfigWarning[]): ConfigWarning[] {
  return warnings.filter((w) =>
    STRICT_FIELDS.some((f) => w.field === f || w.field.startsWith(`${f}.`)),
  );
}
