// Telemetry as Warden sees it after validation: one event from one sandbox, call-level or aggregate.
// Field set = the seed's TelemetryData plus episode/stage/sequence and API-call detail.

import type { Stage } from './episode.ts';

/** API categories used by the adapter; CAPE/Cuckoo report categories map onto these. */
export const API_CATEGORIES = [
  'file',
  'registry',
  'process',
  'network',
  'memory',
  'crypto',
  'system',
  'synchronization',
  'services',
  'ui',
  'other',
] as const;
export type ApiCategory = (typeof API_CATEGORIES)[number];

export const ARTIFACT_TYPES = ['exe', 'dll', 'script', 'document', 'archive', 'other'] as const;
export type ArtifactType = (typeof ARTIFACT_TYPES)[number];

/** One API call, present when the event is call-level telemetry. */
export interface ApiCall {
  readonly name: string;
  readonly category: ApiCategory;
  /** Argument values as strings, bounded in count and length by the validator. */
  readonly args: readonly string[];
}

export interface TelemetryEvent {
  readonly type: 'telemetry';
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  /** Per (episode, stage), starting at 0; gaps and repeats are the receiver's to detect. */
  readonly seq: number;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: number;

  readonly syscallCount: number;
  readonly syscallTypes: readonly string[];
  readonly fileReadCount: number;
  readonly fileWriteCount: number;
  readonly fileDeleteCount: number;
  readonly filePaths: readonly string[];
  readonly networkConnections: number;
  readonly contactedIps: readonly string[];
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly childProcesses: number;
  /** Percent of one core, 0–100. */
  readonly cpuUsage: number;
  /** Resident bytes. */
  readonly memoryUsage: number;
  readonly registryModification: boolean;
  readonly privilegeEscalation: boolean;
  readonly codeInjection: boolean;

  readonly artifactHash: string;
  readonly artifactType: ArtifactType;

  readonly api: ApiCall | null;
}

/** The fields of TelemetryEvent that the validator fills with defaults when missing or malformed. */
export type TelemetryField =
  | Exclude<keyof TelemetryEvent, 'type'>
  | 'api.name'
  | 'api.category'
  | 'api.args';
