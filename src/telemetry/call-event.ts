// Builds one call-level TelemetryEvent from an API call, filling the seed's aggregate fields from
// the call's effects (api-catalog.ts) and its arguments where they name files, hosts or sizes.

import type { Stage } from '../messages/episode.ts';
import type { ApiCategory, ArtifactType, TelemetryEvent } from '../messages/telemetry.ts';
import { apiCategory, apiEffects } from './api-catalog.ts';

export interface CallContext {
  readonly sandboxId: string;
  readonly episodeId: string;
  readonly stage: Stage;
  readonly artifactHash: string;
  readonly artifactType: ArtifactType;
}

export interface CallArgument {
  readonly name: string;
  readonly value: string;
}

const FILE_ARGS =
  /^(FileName|ExistingFileName|NewFileName|PathName|DirectoryName|FilePath|lpFileName|ModuleName)$/i;
const HOST_ARGS = /^(ip|IPAddress|ServerName|host|HostName|Address)$/i;
const SIZE_ARGS =
  /^(Length|BufferLength|len|dwNumberOfBytesToWrite|NumberOfBytesWritten|BytesSent|ReceivedBytes)$/i;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export function callEvent(
  ctx: CallContext,
  seq: number,
  timestamp: number,
  name: string,
  args: readonly CallArgument[] = [],
  category: ApiCategory = apiCategory(name),
): TelemetryEvent {
  const effects = apiEffects(name);
  const has = (e: string) => effects.includes(e as never);
  const filePaths: string[] = [];
  const contactedIps: string[] = [];
  let size = 0;
  for (const a of args) {
    if (FILE_ARGS.test(a.name) && a.value) filePaths.push(a.value);
    else if (HOST_ARGS.test(a.name) && IPV4.test(a.value)) contactedIps.push(a.value);
    else if (SIZE_ARGS.test(a.name)) {
      const n = Number(a.value);
      if (Number.isFinite(n) && n > 0) size = n;
    }
  }
  return {
    type: 'telemetry',
    ...ctx,
    seq,
    timestamp,
    syscallCount: 1,
    syscallTypes: [name],
    fileReadCount: has('file-read') ? 1 : 0,
    fileWriteCount: has('file-write') ? 1 : 0,
    fileDeleteCount: has('file-delete') ? 1 : 0,
    filePaths,
    networkConnections: has('network-connection') ? 1 : 0,
    contactedIps,
    bytesSent: has('bytes-sent') ? size : 0,
    bytesReceived: has('bytes-received') ? size : 0,
    childProcesses: has('child-process') ? 1 : 0,
    cpuUsage: 0,
    memoryUsage: 0,
    registryModification: has('registry-modification'),
    privilegeEscalation: has('privilege-escalation'),
    codeInjection: has('code-injection'),
    api: { name, category, args: args.map((a) => `${a.name}=${a.value}`) },
  };
}
