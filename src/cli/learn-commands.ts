// `warden train` and `warden eval`: offline learning on recorded telemetry and its evaluation
// against the rule-based policy and a logistic-regression baseline.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageConfig } from '../actors/episodes/two-stage.ts';
import { chooseAction } from '../actors/inference/decide.ts';
import { OnnxPolicy } from '../actors/inference/onnx-policy.ts';
import { hyperParameters } from '../actors/learner/hyper-parameters.ts';
import type { QNetParams } from '../actors/learner/q-network.ts';
import { loadConfig } from '../config/load.ts';
import { type LoadedTraces, labelCounts, readTraceFile } from '../data/load-traces.ts';
import { type SplitPart, splitTraces } from '../data/split.ts';
import type { RecordedTrace } from '../messages/recorded.ts';
import { readPolicyParams } from '../models/read-params.ts';
import { signingKeyFromEnv } from '../models/signing.ts';
import { exportModel, latestVersion, modelFile, readMetadata } from '../models/store.ts';
import { InvalidInputError } from '../runtime/errors.ts';
import { distill } from '../training/distill.ts';
import {
  type DetectionReport,
  evaluateLogistic,
  evaluatePolicy,
  rulesAsPolicy,
} from '../training/evaluate.ts';
import { trainMembers } from '../training/members.ts';
import { trainingReportHtml } from '../training/report.ts';
import type { EngineChoice } from '../training/train.ts';

type Out = NodeJS.WritableStream;

/** The stage semantics, and the verdict margin the served policy acts with. */
function stageConfig(): StageConfig & { verdictMargin: number } {
  const { config } = loadConfig();
  return {
    dim: config.telemetry.stateDim,
    horizon: config.telemetry.horizon,
    rewards: config.rewards,
    verdictMargin: config.inference.verdictMargin,
  };
}

async function evaluateAll(
  policy: OnnxPolicy,
  train: readonly RecordedTrace[],
  test: readonly RecordedTrace[],
  cfg: StageConfig & { verdictMargin: number },
) {
  const agent = await evaluatePolicy(
    test,
    async (s) => {
      const q = await policy.qValues(s, 1);
      return { action: chooseAction(q, 0, cfg.verdictMargin), qValues: q };
    },
    cfg,
  );
  const rules = await evaluatePolicy(test, rulesAsPolicy(cfg.dim), cfg);
  const logistic = evaluateLogistic(train, test, cfg);
  return [
    ['agent (DQN)', agent],
    ['rule-based policy', rules],
    ['logistic regression (whole trace)', logistic],
  ] as const;
}

/** The traces, after saying on stderr how many rows or lines of the file were left out. */
function readable(loaded: LoadedTraces, path: string): LoadedTraces['traces'] {
  if (loaded.skipped > 0)
    process.stderr.write(
      `${path}: ${loaded.skipped} unreadable rows or lines left out (first at ${loaded.firstProblem})\n`,
    );
  return loaded.traces;
}

function printTable(rows: readonly (readonly [string, DetectionReport])[], out: Out): void {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '  —  ');
  out.write(`  ${'policy'.padEnd(36)} AUC    bal.acc TPR@1%FPR events  reward  TP/FP/TN/FN\n`);
  for (const [name, r] of rows) {
    const c = r.confusion;
    out.write(
      `  ${name.padEnd(36)} ${f(r.auc)}  ${f(r.balancedAccuracy)}  ${f(r.tprAt1PctFpr)}     ${r.meanEventsBeforeDecision.toFixed(1).padStart(5)}  ${r.meanReward.toFixed(3).padStart(6)}  ${c.tp}/${c.fp}/${c.tn}/${c.fn}\n`,
    );
  }
}

export async function trainCommand(
  opts: {
    data: string;
    episodes: number;
    out: string;
    engine: EngineChoice;
    seed: number;
    batchSize?: number;
    resume?: boolean;
    /** false with --no-hindsight. */
    hindsight?: boolean;
    /** false with --no-average. */
    average?: boolean;
    averageFrom?: number;
    /** Independently trained networks distilled into the model (1: no distillation). */
    members?: number;
    names?: string;
  },
  out: Out,
): Promise<number> {
  const loaded = loadConfig().config;
  const config = opts.batchSize
    ? { ...loaded, learning: { ...loaded.learning, batchSize: opts.batchSize } }
    : loaded;
  if (opts.average !== false && opts.averageFrom !== undefined && opts.averageFrom > opts.episodes)
    throw new InvalidInputError(
      `--average-from ${opts.averageFrom} is after the last of --episodes ${opts.episodes}: lower it, or train with --no-average`,
    );
  const traces = readable(await readTraceFile(opts.data, opts.names), opts.data);
  const trainSet = splitTraces(traces, 'train');
  const testSet = splitTraces(traces, 'test');
  if (trainSet.length === 0)
    throw new InvalidInputError(
      `${opts.data}: none of its ${traces.length} episodes falls on the training side of the split`,
    );
  // Unlabelled episodes earn only the time cost; without both labels the model would learn no
  // verdict at all, yet become the latest version a running Warden loads.
  const labels = labelCounts(trainSet);
  if (labels.malicious === 0 || labels.benign === 0)
    throw new InvalidInputError(
      `${opts.data}: the training side of the split holds ${labels.malicious} malicious, ${labels.benign} benign and ${labels.unknown} unlabelled episodes; learning a verdict needs both labels (warden validate reports a file's labels)`,
    );
  const cfg = stageConfig();
  let initial: QNetParams | undefined;
  if (opts.resume) {
    const v = latestVersion(opts.out);
    if (v) {
      initial = readPolicyParams(readFileSync(modelFile(opts.out, v)));
      out.write(`resuming from ${v}\n`);
    }
  }
  const members = opts.members ?? 1;
  out.write(
    `training on ${trainSet.length} episodes (${labels.unknown > 0 ? `${labels.unknown} unlabelled, which teach only the time cost; ` : ''}${testSet.length} held out by sequence), ${opts.episodes} training episodes${members > 1 ? ` for each of ${members} networks` : ''}\n`,
  );
  const tty = (out as NodeJS.WriteStream).isTTY === true;
  const total = opts.episodes * members;
  const played = new Array<number>(members).fill(0);
  let printedTenth = 0;
  const started = performance.now();
  const results = await trainMembers({
    traces: trainSet,
    config,
    episodes: opts.episodes,
    members,
    engine: opts.engine,
    seed: opts.seed,
    hindsight: opts.hindsight !== false,
    ...(opts.average !== false
      ? { averageFrom: opts.averageFrom ?? Math.max(1, Math.ceil(opts.episodes / 3)) }
      : {}),
    ...(initial ? { initial } : {}),
    progressEvery: Math.max(1, Math.floor(opts.episodes / 100)),
    onProgress: (member, p) => {
      played[member] = p.episode;
      const sum = played.reduce((a, b) => a + b, 0);
      const done = sum / total;
      const bar = `${'█'.repeat(Math.round(done * 30))}${'░'.repeat(30 - Math.round(done * 30))}`;
      const who = members > 1 ? ` (${members} members; member ${member + 1}:` : '';
      const line = `${bar} ${sum}/${total}${who}  reward ${p.averageReward.toFixed(3)}  loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : '—'}  ε ${p.epsilon.toFixed(3)}  TPR ${p.tpr.toFixed(2)} FPR ${p.fpr.toFixed(2)}${who ? ')' : ''}`;
      if (tty) out.write(`\r${line}`);
      else if (Math.floor(done * 10) > printedTenth || sum === total) {
        printedTenth = Math.floor(done * 10);
        out.write(`${line}\n`);
      }
    },
  });
  if (tty) out.write('\n');
  for (const [i, r] of results.entries())
    out.write(
      `${members > 1 ? `member ${i + 1} (seed ${opts.seed + i}): ` : ''}trained with ${r.engine} in ${r.seconds.toFixed(1)} s: ${r.metrics.updates} updates, ${r.transitions} transitions, ${r.metrics.recoveries} recoveries\n`,
    );
  const first = results[0]!;
  const averaged = first.averaged
    ? `mean of ${first.averaged.snapshots} snapshots, episodes ${first.averaged.from}–${first.averaged.to}`
    : 'last weights';
  let params = first.params;
  let weights = averaged;
  if (members > 1) {
    out.write(`distilling ${members} members into one network…\n`);
    const distilled = await distill({
      teachers: results.map((r) => r.params),
      traces: trainSet,
      config,
      stage: cfg,
      engine: opts.engine,
      seed: opts.seed,
      onEpoch: (epoch, loss) =>
        out.write(`  distillation epoch ${epoch}: loss ${loss.toFixed(5)}\n`),
    });
    out.write(`distilled in ${distilled.seconds.toFixed(1)} s\n`);
    params = distilled.params;
    weights = `distilled from ${members} members (seeds ${opts.seed}–${opts.seed + members - 1}; each the ${averaged}) on ${distilled.states} states`;
  }
  const seconds = (performance.now() - started) / 1000;
  out.write(`model weights: ${weights}\n`);
  const result = { ...first, params, seconds };

  // Export (validated before it becomes visible), then evaluate the exported file itself.
  const signingKey = signingKeyFromEnv();
  const exported = await exportModel(
    opts.out,
    result.params,
    {
      hyperParameters: hyperParameters(config),
      trainingEpisodes: total,
      metrics: {
        finalLoss: result.metrics.loss,
        averageReward: result.metrics.averageReward,
        detectionAccuracy: 0,
        falsePositiveRate: 0,
        falseNegativeRate: 0,
      },
      engine: result.engine,
    },
    signingKey ? { signingKey } : {},
  );
  const policy = await OnnxPolicy.load(exported.path, cfg.dim, 6, exported.metadata.sha256);
  const rows = await evaluateAll(policy, trainSet, testSet, cfg);
  await policy.release();
  const agent = rows[0][1];
  const c = agent.confusion;
  const metadata = {
    ...exported.metadata,
    metrics: {
      ...exported.metadata.metrics,
      detectionAccuracy: agent.balancedAccuracy,
      falsePositiveRate: c.fp + c.tn ? c.fp / (c.fp + c.tn) : 0,
      falseNegativeRate: c.fn + c.tp ? c.fn / (c.fn + c.tp) : 0,
    },
  };
  writeFileSync(
    join(opts.out, `drl_agent_${metadata.version}_metadata.json`),
    `${JSON.stringify(metadata, null, 2)}\n`,
  );
  out.write(
    `model ${metadata.version} → ${exported.path} (export |ΔQ| ${exported.maxDiff.toExponential(1)})\n`,
  );
  out.write(`held-out evaluation (${testSet.length} episodes):\n`);
  printTable(rows, out);
  const reportPath = join(opts.out, `report-${metadata.version}.html`);
  writeFileSync(
    reportPath,
    trainingReportHtml({
      title: `Warden training report ${metadata.version}`,
      history: result.history,
      evaluation: rows,
      facts: {
        data: opts.data,
        'training episodes': members > 1 ? `${members} × ${opts.episodes}` : opts.episodes,
        engine: result.engine,
        'model weights': weights,
        updates: results.reduce((n, r) => n + r.metrics.updates, 0),
        seconds: result.seconds.toFixed(1),
        'held-out episodes': testSet.length,
        ...(members > 1 ? { 'training curves': `member 1 (seed ${opts.seed})` } : {}),
      },
    }),
  );
  out.write(`report → ${reportPath}\n`);
  return 0;
}

export async function evalCommand(
  opts: {
    model: string;
    data: string;
    split: SplitPart;
    json?: boolean;
    names?: string;
    verdictMargin?: number;
  },
  out: Out,
): Promise<number> {
  const cfg = stageConfig();
  if (opts.verdictMargin !== undefined) cfg.verdictMargin = opts.verdictMargin;
  let path = opts.model;
  let sha: string | undefined;
  if (!path.endsWith('.onnx')) {
    const v = latestVersion(path);
    if (!v) throw new Error(`no model in ${path}`);
    path = modelFile(opts.model, v);
    sha = readMetadata(opts.model, v).sha256;
  }
  const traces = readable(await readTraceFile(opts.data, opts.names), opts.data);
  const evalSet = splitTraces(traces, opts.split);
  if (evalSet.length === 0)
    throw new InvalidInputError(
      `${opts.data}: none of its ${traces.length} episodes falls on the ${opts.split} side of the split (--split all evaluates on every one)`,
    );
  const labels = labelCounts(evalSet);
  if (labels.malicious + labels.benign === 0)
    throw new InvalidInputError(
      `${opts.data}: none of the ${evalSet.length} episodes on the ${opts.split} side of the split is labelled malicious or benign, so there is nothing to score`,
    );
  if (labels.malicious === 0 || labels.benign === 0)
    process.stderr.write(
      `${opts.data}: only ${labels.malicious ? 'malicious' : 'benign'} episodes to score: AUC and TPR at 1% FPR need both labels\n`,
    );
  const trainSet = opts.split === 'all' ? evalSet : splitTraces(traces, 'train');
  const policy = await OnnxPolicy.load(path, cfg.dim, 6, sha);
  const rows = await evaluateAll(policy, trainSet, evalSet, cfg);
  await policy.release();
  if (opts.json) out.write(`${JSON.stringify(Object.fromEntries(rows), null, 2)}\n`);
  else {
    out.write(
      `${path} on ${opts.data} (${opts.split}: ${evalSet.length} episodes${labels.unknown ? `, ${labels.unknown} of them unlabelled and left out` : ''})\n`,
    );
    printTable(rows, out);
  }
  return 0;
}
