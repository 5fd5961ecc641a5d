// `warden sandbox`: the reference sandboxes as a process of their own — the positive sandbox
// (stage 1) and the negative one (stage 2) replaying recorded telemetry over the gRPC contract —
// for a Warden started with `warden run` and these two in its `sandboxes` configuration.

import * as grpc from '@grpc/grpc-js';
import { type SplitPart, splitTraces } from '../data/split.ts';
import { componentLogger, routeGrpcLogs } from '../runtime/logger.ts';
import { BUNDLED_TRACES, replayOrder, startReferencePair } from '../sandbox/reference-pair.ts';
import type { ServerTls } from '../security/tls.ts';

export interface SandboxCommandOptions {
  readonly data?: string;
  /** Default: train for the bundled traces (their test split is Warden's default held-out set), all for --data. */
  readonly split?: SplitPart;
  readonly host: string;
  readonly port: number;
  /** Default: the next port after --port (any free one when --port is 0). */
  readonly negativePort?: number;
  readonly rate?: number;
  readonly realTime?: number;
  readonly episodes?: number;
  readonly concurrency?: number;
  readonly cleanSuccessRate?: number;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** CA for client certificates: mutual TLS. */
  readonly tlsClientCa?: string;
  /** Stop after this many seconds (tests, demos); otherwise at Ctrl-C, or when --episodes are done. */
  readonly duration?: number;
  /** Fault injection, in both sandboxes: rehearse how Warden copes before a real sandbox does it. */
  readonly cutStreamAfter?: number;
  readonly refuseActs?: number;
  readonly delayActs?: { readonly batches: number; readonly ms: number };
}

export async function sandboxCommand(
  o: SandboxCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined))
    throw new Error('--tls-cert and --tls-key go together');
  if (o.tlsClientCa !== undefined && o.tlsCert === undefined)
    throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
  const tls: ServerTls | null =
    o.tlsCert && o.tlsKey
      ? {
          certFile: o.tlsCert,
          keyFile: o.tlsKey,
          clientCaFile: o.tlsClientCa ?? null,
          requireClientCert: o.tlsClientCa !== undefined,
        }
      : null;
  routeGrpcLogs(grpc);
  const data = o.data ?? BUNDLED_TRACES;
  // Outcomes report ground truth: replaying the held-out episodes would teach a learning Warden
  // the very set it judges its models on.
  const split = o.split ?? (o.data === undefined ? 'train' : 'all');
  const traces = splitTraces(await replayOrder(data), split);
  if (traces.length === 0)
    throw new Error(`${data}: none of its episodes falls on the ${split} side of the split`);
  const faults = {
    ...(o.cutStreamAfter === undefined ? {} : { cutStreamAfterBatches: o.cutStreamAfter }),
    ...(o.refuseActs === undefined ? {} : { refuseActCalls: o.refuseActs }),
    ...(o.delayActs === undefined ? {} : { delayActs: o.delayActs }),
  };
  const faulty = Object.keys(faults).length > 0;
  const pair = await startReferencePair({
    traces,
    host: o.host,
    ports: [o.port, o.negativePort ?? (o.port === 0 ? 0 : o.port + 1)],
    tls,
    ...(o.rate === undefined ? {} : { eventsPerSecond: o.rate }),
    ...(o.realTime === undefined ? {} : { realTime: { speed: o.realTime } }),
    ...(o.episodes === undefined ? {} : { episodes: o.episodes }),
    ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
    ...(o.cleanSuccessRate === undefined ? {} : { cleanSuccessRate: o.cleanSuccessRate }),
    ...(faulty ? { faults: [faults, faults] as const } : {}),
    log: componentLogger('sandbox'),
  });
  const { positive, negative } = pair;
  const address = (port: number) => `${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  out.write(
    `warden: reference sandbox positive (stage 1) on ${address(positive.port)}, replaying ${traces.length} traces of ${data}${split === 'all' ? '' : ` (${split === 'train' ? 'training' : 'test'} split)`}${tls ? ' over TLS' : ''}\n`,
  );
  out.write(
    `warden: reference sandbox negative (stage 2) on ${address(negative.port)}, running the files the positive one passes on\n`,
  );
  if (faulty)
    out.write(
      `warden: fault injection in both sandboxes:${o.cutStreamAfter ? ` every event stream cut after ${o.cutStreamAfter} batches;` : ''}${o.refuseActs ? ` the first ${o.refuseActs} action batches refused;` : ''}${o.delayActs ? ` the acks of the first ${o.delayActs.batches} action batches held back ${o.delayActs.ms} ms;` : ''}`.replace(
        /;$/,
        '\n',
      ),
    );
  if (!tls)
    out.write(
      `warden: connect with: npx warden run ${pair.sandboxes.map((s) => `--sandbox ${s.name}=${address(s.port)}`).join(' ')}\n`,
    );
  out.write(
    `warden: or configure for \`warden run\`: "sandboxes": ${JSON.stringify(
      pair.sandboxes.map((s) => ({ name: s.name, address: address(s.port) })),
    )}${tls ? `, each with "tls": {"caFile": <the CA of --tls-cert>${tls.requireClientCert ? ', "certFile", "keyFile": <a client certificate of --tls-client-ca>' : ''}}` : ''}\n`,
  );

  let finish: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    finish = resolve;
  });
  const onInt = () => finish('SIGINT');
  const onTerm = () => finish('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  const timer = o.duration
    ? setTimeout(() => finish(`--duration ${o.duration}`), o.duration * 1000)
    : undefined;
  // With --episodes, the run ends once the negative sandbox has streamed the last outcome.
  const poll =
    o.episodes === undefined
      ? undefined
      : setInterval(() => {
          if (negative.done) finish(`all ${o.episodes} episodes done`);
        }, 200);
  const reason = await stopped;
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  clearTimeout(timer);
  clearInterval(poll);
  await pair.stop();
  const s = [positive.stats, negative.stats];
  const both = (k: 'streamsCut' | 'eventsResent' | 'actsRefused' | 'actsDelayed') =>
    s[0]![k] + s[1]![k];
  out.write(
    `warden: sandboxes stopped (${reason}); episodes started ${s[0]!.episodesStarted}, completed ${s[0]!.episodesCompleted}; events sent ${s[0]!.eventsSent + s[1]!.eventsSent}; actions applied ${s[0]!.actionsApplied + s[1]!.actionsApplied}${faulty ? `; faults injected: streams cut ${both('streamsCut')} (events sent again from where Warden stood ${both('eventsResent')}), action batches refused ${both('actsRefused')}, delayed ${both('actsDelayed')}` : ''}\n`,
  );
  return 0;
}
