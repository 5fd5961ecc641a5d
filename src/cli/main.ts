// The `warden` command line: one sub-command per job. Later work adds its commands here.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type { SplitPart } from '../data/split.ts';
import { configCheck, configDocs, configSchema, configShow } from './config-commands.ts';
import { importCapeCommand, importCsvCommand, validateCommand } from './data-commands.ts';
import { dbEpisodesCommand, dbPruneCommand } from './db-commands.ts';
import { evalCommand, trainCommand } from './learn-commands.ts';
import {
  keygenCommand,
  listCommand,
  rollbackCommand,
  signCommand,
  verifyCommand,
} from './model-commands.ts';
import { patternsQueryCommand, patternsReindexCommand } from './pattern-commands.ts';
import { sandboxCommand } from './sandbox-command.ts';
import {
  configUpdateCommand,
  deployCommand,
  devPkiCommand,
  remoteRollbackCommand,
  type ServiceFlags,
  statusCommand,
  withServiceFlags,
} from './service-commands.ts';
import { start } from './start.ts';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

/** A parser for an option that takes one of a few words. */
function oneOf<T extends string>(...words: readonly T[]): (value: string) => T {
  const expected = `expected ${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
  return (value) => {
    if ((words as readonly string[]).includes(value)) return value as T;
    throw new InvalidArgumentError(expected);
  };
}

const splitPart = oneOf<SplitPart>('train', 'test', 'all');
const groundTruth = oneOf('malicious', 'benign', 'unknown');
const engine = oneOf('auto', 'ort', 'tfjs');

function sandboxFlag(
  value: string,
  previous: { name: string; address: string }[] = [],
): { name: string; address: string }[] {
  const m = /^([A-Za-z0-9_.-]{1,64})=(\S+:\d{1,5})$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected name=host:port, e.g. positive=127.0.0.1:50061');
  return [...previous, { name: m[1]!, address: m[2]! }];
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError('a port from 0 (any free one) to 65535');
  return n;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number ≥ 1');
  return n;
}

/** `--delay-acts <n>x<ms>`: hold back the acks of the first n action batches by ms each. */
function delayActs(value: string): { batches: number; ms: number } {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1)
    throw new InvalidArgumentError('expected <batches>x<ms>, e.g. 10x1500');
  return { batches: Number(m[1]), ms: Number(m[2]) };
}

function minorityShare(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 0.5))
    throw new InvalidArgumentError('a share from 0 to 0.5');
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('a number from 0 to 1');
  return n;
}

export async function run(
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  let code = 0;
  const program = new Command()
    .name('warden')
    .description('Deep-reinforcement-learning containment for malware-analysis sandboxes.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => process.stderr.write(s) });

  program
    .command('start')
    .description('run the whole system on embedded defaults (what `npm start` runs)')
    .option('--duration <seconds>', 'stop cleanly after this many seconds', positiveNumber)
    .option('--config-dir <dir>', 'configuration directory (default: config/)')
    .option(
      '--rate <events/s>',
      'events per second per reference sandbox (default: as fast as possible)',
      positiveNumber,
    )
    .option(
      '--real-time [speed]',
      'reference sandboxes replay each trace with its recorded timing (optionally this many times faster)',
      positiveNumber,
    )
    .option(
      '--no-starter',
      'with no model in models.dir, start from the rule table instead of the bundled trained model',
    )
    .action(
      async (opts: {
        duration?: number;
        configDir?: string;
        rate?: number;
        realTime?: number | true;
        starter?: boolean;
      }) => {
        code = await start(
          { ...opts, demo: true, realTime: opts.realTime === true ? 1 : opts.realTime },
          out,
        );
      },
    );
  program
    .command('run')
    .description('run Warden against the sandboxes in the configuration (no reference sandboxes)')
    .option('--duration <seconds>', 'stop cleanly after this many seconds', positiveNumber)
    .option('--config-dir <dir>', 'configuration directory (default: config/)')
    .option('--demo', 'also start the two reference sandboxes (what `start` does)')
    .option(
      '--sandbox <name=host:port>',
      'a sandbox to connect to, in plaintext (TLS: configure it in "sandboxes"); repeatable',
      sandboxFlag,
    )
    .option(
      '--rate <events/s>',
      'with --demo: events per second per reference sandbox (default: as fast as possible)',
      positiveNumber,
    )
    .option(
      '--no-starter',
      'with --demo and no model in models.dir, start from the rule table instead of the bundled trained model',
    )
    .action(
      async (opts: {
        duration?: number;
        configDir?: string;
        demo?: boolean;
        starter?: boolean;
        rate?: number;
        sandbox?: { name: string; address: string }[];
      }) => {
        const { sandbox = [], ...rest } = opts;
        code = await start({ ...rest, demo: opts.demo === true, sandboxes: sandbox }, out);
      },
    );

  program
    .command('sandbox')
    .description(
      'run the reference sandboxes: a positive one (stage 1) replaying recorded telemetry, and a negative one (stage 2) for the files it passes on',
    )
    .option(
      '--data <file>',
      'telemetry JSONL or labelled CSV (default: the bundled Oliveira 2019 traces)',
    )
    .option(
      '--split <part>',
      'train | test | all (default: train for the bundled traces, whose test split is the held-out set Warden judges every new model on; all for --data)',
      splitPart,
    )
    .option('--host <address>', 'bind address (not loopback: TLS required)', '127.0.0.1')
    .option('--port <n>', "the positive sandbox's port (0: any free port)", port, 50061)
    .option('--negative-port <n>', "the negative sandbox's port (default: --port + 1)", port)
    .option(
      '--rate <events/s>',
      'events per second per sandbox (default: as fast as possible)',
      positiveNumber,
    )
    .option(
      '--real-time [speed]',
      'replay each trace with its recorded timing (optionally this many times faster)',
      positiveNumber,
    )
    .option(
      '--episodes <n>',
      'stop after this many episodes (default: cycle through the traces)',
      wholeNumber,
    )
    .option('--concurrency <n>', 'files in flight at once', wholeNumber, 16)
    .option('--clean-success-rate <p>', 'share of malware that quarantine cleans', share, 0.9)
    .option('--duration <seconds>', 'stop after this many seconds', positiveNumber)
    .option('--tls-cert <pem>', 'serve over TLS with this certificate …')
    .option('--tls-key <pem>', '… and this key')
    .option('--tls-client-ca <pem>', 'mutual TLS: require client certificates from this CA')
    .option(
      '--cut-stream-after <batches>',
      'fault: cut every event stream after this many batches (the cut batch is sent again once Warden reconnects)',
      wholeNumber,
    )
    .option(
      '--refuse-acts <n>',
      'fault: refuse the first n batches of actions with UNAVAILABLE (Warden retries them)',
      wholeNumber,
    )
    .option(
      '--delay-acts <n>x<ms>',
      'fault: hold back the acknowledgements of the first n batches of actions by ms each',
      delayActs,
    )
    .action(async (opts) => {
      code = await sandboxCommand(
        { ...opts, ...(opts.realTime === true ? { realTime: 1 } : {}) },
        out,
      );
    });

  const config = program.command('config').description('inspect and validate configuration');
  config
    .command('check')
    .description(
      'validate the configuration for WARDEN_ENV; exit 0 when valid, 1 when fields fell back, 2 when unreadable',
    )
    .option('--config-dir <dir>', 'configuration directory')
    .action((opts: { configDir?: string }) => {
      code = configCheck(opts.configDir, out);
    });
  config
    .command('show')
    .description('print the effective configuration (secrets redacted)')
    .option('--config-dir <dir>', 'configuration directory')
    .action((opts: { configDir?: string }) => {
      code = configShow(opts.configDir, out);
    });
  config
    .command('schema')
    .description('print the JSON Schema of the configuration')
    .option('--write', 'write config/schema.json and config/default.json from the schema')
    .action((opts: { write?: boolean }) => {
      code = configSchema(opts.write === true, out);
    });

  withServiceFlags(
    config
      .command('update')
      .description(
        'replace config/<env>.json on the running Warden: validated strictly first, then hot-reloaded (operate role)',
      )
      .argument('<file>', 'JSON document for config/<env>.json')
      .option('--dry-run', 'validate and list the changes; apply nothing'),
  ).action(async (file: string, flags: ServiceFlags & { dryRun?: boolean }) => {
    code = await configUpdateCommand(file, flags, out);
  });

  config
    .command('docs')
    .description('print the configuration reference generated from the schema')
    .option('--write', 'write docs/configuration.md')
    .action((opts: { write?: boolean }) => {
      code = configDocs(opts.write === true, out);
    });

  const imports = program
    .command('import')
    .description('turn recorded sandbox data into telemetry JSON Lines');
  imports
    .command('csv <file>')
    .description(
      'labelled API-call sequence CSV (Oliveira ids with --names, or API names) → telemetry JSONL',
    )
    .requiredOption('-o, --out <file>', 'output JSONL')
    .option('--names <json>', 'id → API name table; the CSV then holds ids')
    .option('--label <column>', 'label column (default: malware, label, or the last column)')
    .action(async (file: string, opts: { out: string; names?: string; label?: string }) => {
      code = await importCsvCommand(file, opts, out);
    });
  imports
    .command('cape <reports...>')
    .description(
      'CAPEv2 / Cuckoo report.json files (optionally .gz) → telemetry JSONL, one episode each',
    )
    .requiredOption('-o, --out <file>', 'output JSONL')
    .option(
      '--label <label>',
      'ground truth of these reports: malicious | benign | unknown',
      groundTruth,
      'malicious',
    )
    .action(async (reports: string[], opts: { out: string; label?: string }) => {
      code = await importCapeCommand(reports, opts, out);
    });
  program
    .command('validate <file>')
    .description('data-quality report for a telemetry JSONL file; exit 0 = pass, 1 = fail')
    .option('--json', 'print the report as JSON')
    .option(
      '--min-minority <share>',
      'fail when the minority label is below this share (0–0.5)',
      minorityShare,
    )
    .action(async (file: string, opts: { json?: boolean; minMinority?: number }) => {
      code = await validateCommand(file, opts, out);
    });

  program
    .command('train')
    .description(
      'train the DQN policy offline on recorded telemetry, export it, and write a report',
    )
    .requiredOption('--data <file>', 'telemetry JSONL or labelled CSV')
    .option('--episodes <n>', 'training episodes', wholeNumber, 3000)
    .option(
      '--average-from <episode>',
      'the model is the mean of the weights taken every 10 episodes from this one on (default: a third of --episodes)',
      wholeNumber,
    )
    .option('--no-average', 'the model is the last weights of training, not a weight average')
    .option(
      '--members <n>',
      'train this many networks at once (seeds --seed, --seed + 1, …; each on a worker thread) and distill their mean Q-values into the model; 1 exports the one network',
      (v) => {
        const n = Number.parseInt(v, 10);
        if (!(String(n) === v.trim() && n >= 1 && n <= 16))
          throw new InvalidArgumentError('a whole number from 1 to 16');
        return n;
      },
      3,
    )
    .option('--out <dir>', 'models directory', 'models')
    .option('--engine <engine>', 'auto | ort | tfjs', engine, 'auto')
    .option(
      '--seed <n>',
      'seed for sampling, exploration and initial weights',
      (v) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('a whole number');
        return n;
      },
      1,
    )
    .option(
      '--batch-size <n>',
      'samples per update (default learning.batchSize, 64; 128 takes 1.5× the time per update)',
      (v) => {
        const n = Number.parseInt(v, 10);
        if (!(n >= 1 && n <= 65_536))
          throw new InvalidArgumentError('a whole number from 1 to 65536');
        return n;
      },
    )
    .option('--resume', 'continue from the latest model in --out (incremental learning)')
    .option(
      '--no-hindsight',
      'learn only from the played episodes, not from every step of each labelled trace',
    )
    .option('--names <json>', 'id → API name table for an ids CSV')
    .action(async (opts) => {
      code = await trainCommand(opts, out);
    });
  program
    .command('eval')
    .description('evaluate a model against the rule-based and logistic-regression baselines')
    .requiredOption('--model <onnx|dir>', 'an .onnx file, or a models directory (its latest)')
    .requiredOption('--data <file>', 'telemetry JSONL or labelled CSV')
    .option('--split <part>', 'test (held out) | train | all', splitPart, 'test')
    .option(
      '--verdict-margin <q>',
      'a stage-ending action only when its Q-value beats observing on by this much (default inference.verdictMargin)',
      nonNegativeNumber,
    )
    .option('--json', 'print the figures as JSON')
    .option('--names <json>', 'id → API name table for an ids CSV')
    .action(async (opts) => {
      code = await evalCommand(opts, out);
    });

  const patterns = program
    .command('patterns')
    .description('what Warden learned, for detection systems');
  withServiceFlags(patterns.command('query'))
    .description(
      'query learned attack patterns (by type, time range, or nearest to a feature vector), each with its confidence',
    )
    .option('--type <attackType>', 'patterns of one attack type, newest first')
    .option('--from <date>', 'time range start (ISO 8601)')
    .option('--to <date>', 'time range end (ISO 8601, exclusive; default now)')
    .option('--near <v1,v2,…>', 'k nearest patterns to this feature vector')
    .option('--k <n>', 'how many nearest (default 10)', wholeNumber)
    .option('--limit <n>', 'most results for --type and time range (default 100)', wholeNumber)
    .option('--json', 'print JSON')
    .action(async (opts) => {
      code = await patternsQueryCommand(opts, out);
    });

  patterns
    .command('reindex')
    .description(
      'maintenance: train nearest-neighbour cells if needed (retrain once the store has doubled), file every pattern, store each cell together (run while Warden is stopped, or with DATABASE_URL)',
    )
    .option('--config-dir <dir>', 'configuration directory')
    .option('--retrain', 'retrain the cells on a fresh sample whatever the growth')
    .action(async (opts: { configDir?: string; retrain?: boolean }) => {
      code = await patternsReindexCommand(opts, out);
    });

  const db = program.command('db').description('the episode history in PostgreSQL');
  withServiceFlags(db.command('episodes'))
    .description(
      'what Warden did with each file, stage by stage: one episode, every episode of an artifact, or the latest to end (asks the running Warden; read role)',
    )
    .option('--id <episodeId>', 'one episode')
    .option('--artifact <hash>', "every episode of this file (the sandbox's artifact hash)")
    .option('--from <date>', 'episodes that ended at or after (ISO 8601)')
    .option('--to <date>', 'episodes that ended before (ISO 8601)')
    .option('--limit <n>', 'most episodes, latest first (default 20; 100 with --steps)')
    .option('--steps', "every decision's action, repeats folded")
    .option('--json', 'print JSON')
    .action(async (opts) => {
      code = await dbEpisodesCommand(opts, out);
    });
  db.command('prune')
    .description(
      'delete episodes that ended before the cutoff, their trajectories, and shared experiences every consumer has read; attack patterns and models stay (needs a role with DELETE: run with DATABASE_URL, or while Warden is stopped)',
    )
    .requiredOption('--older-than <age>', 'age of the newest history to delete, e.g. 30d, 12h')
    .option('--dry-run', 'count what would be deleted, delete nothing')
    .option('--config-dir <dir>', 'configuration directory')
    .action(async (opts: { olderThan: string; dryRun?: boolean; configDir?: string }) => {
      code = await dbPruneCommand(opts, out);
    });

  const models = program.command('models').description('model provenance and versions');
  models
    .command('keygen')
    .description('create an Ed25519 key pair for signing models')
    .requiredOption('--out <prefix>', 'writes <prefix>.key.pem (0600) and <prefix>.pub.pem')
    .action((opts: { out: string }) => {
      code = keygenCommand(opts, out);
    });
  models
    .command('sign')
    .description('sign a model version (default: the latest) with a private key')
    .option('--dir <dir>', 'models directory', 'models')
    .option('--version <v>', 'version to sign (default: latest)')
    .requiredOption('--key <pem>', 'private key (PEM file)')
    .action((opts: { dir: string; version?: string; key: string }) => {
      code = signCommand(opts, out);
    });
  models
    .command('list')
    .description(
      'the versions of a models directory, newest first: when made, the metrics they were measured at, checksum and signature; * marks latest',
    )
    .option('--dir <dir>', 'models directory', 'models')
    .option('--json', 'print JSON')
    .action((opts: { dir: string; json?: boolean }) => {
      code = listCommand(opts, out);
    });
  models
    .command('verify')
    .description(
      'check a model version against its sha256 and signature; exit 0 only when both hold',
    )
    .option('--dir <dir>', 'models directory', 'models')
    .option('--version <v>', 'version to verify (default: latest)')
    .requiredOption('--public-key <pem>', 'public key (PEM file)')
    .action((opts: { dir: string; version?: string; publicKey: string }) => {
      code = verifyCommand(opts, out);
    });
  withServiceFlags(
    models
      .command('deploy')
      .description(
        'serve a model version on the running Warden (verified, hot-loaded; latest follows). Needs the operate role',
      )
      .argument('<version>', 'a version in the models directory, e.g. v3'),
  ).action(async (version: string, flags: ServiceFlags) => {
    code = await deployCommand(version, flags, out);
  });
  withServiceFlags(
    models
      .command('rollback')
      .description(
        'roll the running Warden back to the version it served before (operate role); with --dir, only move the latest pointer of a models directory',
      )
      .option('--dir <dir>', 'offline: point latest at the version before the current one'),
  ).action(async (opts: ServiceFlags & { dir?: string }) => {
    code = opts.dir
      ? rollbackCommand({ dir: opts.dir }, out)
      : await remoteRollbackCommand(opts, out);
  });

  withServiceFlags(
    program.command('status').description('what the running Warden serves (operate role)'),
  ).action(async (flags: ServiceFlags) => {
    code = await statusCommand(flags, out);
  });

  program
    .command('tls')
    .description('transport security helpers')
    .command('dev-pki')
    .description('write a development CA, a localhost server certificate and client certificates')
    .argument('<dir>', 'output directory')
    .option(
      '--clients <names>',
      'client certificate common names, comma-separated',
      'detector,operator',
    )
    .action(async (dir: string, opts: { clients: string }) => {
      code = await devPkiCommand(dir, opts, out);
    });

  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    throw error;
  }
  return code;
}
