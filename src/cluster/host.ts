// Who this process is in a fleet: its role (cluster.role) and host id.

import { hostname } from 'node:os';
import type { WardenConfig } from '../config/schema.ts';

export function hostIdOf(config: Pick<WardenConfig, 'cluster'>): string {
  return (
    config.cluster.hostId ??
    hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '_')
      .slice(0, 64)
  );
}
