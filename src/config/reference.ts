// Renders docs/configuration.md from ConfigSchema: every field with its type, default, bounds,
// whether it needs a restart, and its description — so the reference cannot drift from the code.

import { Kind, type TObject, type TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './schema.ts';
import { defaultOf } from './validate.ts';

const isObject = (s: TSchema): s is TObject => s[Kind] === 'Object';

function typeOf(s: TSchema): string {
  const kind = s[Kind] as string;
  if (kind === 'Union')
    return (s.anyOf as TSchema[])
      .map((x) => ('const' in x ? JSON.stringify(x.const) : typeOf(x)))
      .join(' \\| ');
  if (kind === 'Array') return `${typeOf(s.items as TSchema)}[]`;
  if (kind === 'Record') return 'map';
  return kind.toLowerCase();
}

function bounds(s: TSchema): string {
  const parts: string[] = [];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined) parts.push(`length ≥ ${s.minLength}`);
  if (s.maxItems !== undefined) parts.push(`≤ ${s.maxItems} items`);
  return parts.join(', ');
}

function rows(schema: TSchema, path: string): string[] {
  if (isObject(schema)) {
    return Object.entries(schema.properties).flatMap(([k, child]) =>
      rows(child, path ? `${path}.${k}` : k),
    );
  }
  const def = JSON.stringify(defaultOf(schema));
  const restart = (schema as { restart?: boolean }).restart ? 'restart' : 'live';
  const desc = (schema.description ?? '').replaceAll('|', '\\|');
  return [
    `| \`${path}\` | ${typeOf(schema)} | \`${def}\` | ${bounds(schema)} | ${restart} | ${desc} |`,
  ];
}

export function configurationReference(): string {
  return [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` by `npx warden config docs --write`; do not edit by hand.',
    '',
    '`config/default.json` is overlaid with `config/<WARDEN_ENV>.json` (dev, staging, prod). Secrets come from the',
    'environment only: `DATABASE_URL`, `WARDEN_MODEL_SIGNING_KEY`, `WARDEN_SANITIZER_KEY`; `WARDEN_LOG_LEVEL` overrides',
    'the log level. An invalid field falls back to its default with a warning naming it. "live" fields change without a',
    'restart when the files change; "restart" fields keep their running value until the next start.',
    '',
    '| field | type | default | bounds | applies | description |',
    '|---|---|---|---|---|---|',
    ...rows(ConfigSchema, ''),
    '',
  ].join('\n');
}
