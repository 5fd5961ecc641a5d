// Renders ConfigSchema as the JSON Schema file kept in config/schema.json (for editors and operators).

import { ConfigSchema } from './schema.ts';

export function configJsonSchema(): string {
  // TypeBox schemas are JSON Schema; JSON.stringify drops its internal symbol keys.
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...ConfigSchema }, null, 2)}\n`;
}
