// `warden config check|show|schema`: validate configuration before applying it, print the
// effective configuration, and regenerate config/schema.json.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configJsonSchema } from '../config/json-schema.ts';
import { DEFAULT_CONFIG_DIR, loadConfig } from '../config/load.ts';
import { configurationReference } from '../config/reference.ts';
import { ConfigSchema } from '../config/schema.ts';
import { defaultOf } from '../config/validate.ts';
import { webhookShown } from '../services/alert-webhook.ts';

export function configCheck(dir: string | undefined, out: NodeJS.WritableStream): number {
  try {
    const { warnings, sources, config } = loadConfig(dir ? { dir } : {});
    out.write(`environment ${config.environment}; read ${sources.join(', ')}\n`);
    for (const w of warnings) out.write(`warning: ${w.field}: ${w.message}\n`);
    out.write(
      warnings.length === 0
        ? 'configuration is valid\n'
        : `${warnings.length} field(s) fell back to defaults\n`,
    );
    return warnings.length === 0 ? 0 : 1;
  } catch (error) {
    out.write(`error: ${(error as Error).message}\n`);
    return 2;
  }
}

export function configShow(dir: string | undefined, out: NodeJS.WritableStream): number {
  const { config } = loadConfig(dir ? { dir } : {});
  const redacted = {
    ...config,
    database: { ...config.database, url: config.database.url ? '<from DATABASE_URL>' : null },
    alerts: {
      ...config.alerts,
      webhook: config.alerts.webhook === null ? null : webhookShown(config.alerts.webhook),
    },
  };
  out.write(`${JSON.stringify(redacted, null, 2)}\n`);
  return 0;
}

/** Prints the JSON Schema, or writes config/schema.json and config/default.json from the schema. */
export function configSchema(write: boolean, out: NodeJS.WritableStream): number {
  const text = configJsonSchema();
  if (!write) {
    out.write(text);
    return 0;
  }
  const schemaPath = join(DEFAULT_CONFIG_DIR, 'schema.json');
  writeFileSync(schemaPath, text);
  const defaultsPath = join(DEFAULT_CONFIG_DIR, 'default.json');
  writeFileSync(
    defaultsPath,
    `${JSON.stringify({ $schema: './schema.json', ...(defaultOf(ConfigSchema) as object) }, null, 2)}\n`,
  );
  out.write(`wrote ${schemaPath} and ${defaultsPath}\n`);
  return 0;
}

/** Prints the configuration reference, or writes docs/configuration.md. */
export function configDocs(write: boolean, out: NodeJS.WritableStream): number {
  const text = configurationReference();
  if (!write) {
    out.write(text);
    return 0;
  }
  const path = new URL('../../docs/configuration.md', import.meta.url).pathname;
  writeFileSync(path, text);
  out.write(`wrote ${path}\n`);
  return 0;
}
