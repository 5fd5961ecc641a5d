// `warden config check|show|schema`: validate configuration before applying it, print the
// effective configuration, and regenerate config/schema.json.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configJsonSchema } from '../config/json-schema.ts';
import { DEFAULT_CONFIG_DIR, loadConfig } from '../config/load.ts';

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
  };
  out.write(`${JSON.stringify(redacted, null, 2)}\n`);
  return 0;
}

export function configSchema(write: boolean, out: NodeJS.WritableStream): number {
  const text = configJsonSchema();
  if (write) {
    const path = join(DEFAULT_CONFIG_DIR, 'schema.json');
    writeFileSync(path, text);
    out.write(`wrote ${path}\n`);
  } else out.write(text);
  return 0;
}
