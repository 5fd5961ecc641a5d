// Importers on the real bundled data: the Oliveira CSV (ids layout), a names-layout CSV, every
// CAPE report in data/cape-reports/ (and the shared folder's, when it is beside the project),
// the JSONL round trip, the quality report and the split by distinct sequence.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { importCape } from '../../src/data/import-cape.ts';
import { importCsv } from '../../src/data/import-csv.ts';
import { readRecorded, writeRecorded } from '../../src/data/jsonl.ts';
import { qualityReport } from '../../src/data/quality.ts';
import { splitTraces } from '../../src/data/split.ts';
import { runCli } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

const DATA = new URL('../../data/', import.meta.url).pathname;
const SHARED = new URL('../../../shared/data/cape-reports/', import.meta.url).pathname;
const names = JSON.parse(readFileSync(join(DATA, 'oliveira-balanced/api_names.json'), 'utf8'));
const tmp = () => tempDir('warden-data-');

test('Oliveira CSV: 2,158 episodes of 100 named calls, balanced labels', (t) => {
  const { traces, skippedRows, unknownIds } = importCsv(
    join(DATA, 'oliveira-balanced/api_calls.csv'),
    { names },
  );
  t.is(traces.length, 2_158);
  t.deepEqual(skippedRows, []);
  t.is(unknownIds, 0);
  t.is(traces.filter((x) => x.episode.label === 'malicious').length, 1_079);
  t.true(traces.every((x) => x.events.length === 100));
  const first = traces[0]!;
  t.is(first.events[0]!.api?.name, names['286']);
  t.deepEqual(
    first.events.slice(11, 14).map((e) => e.api?.name),
    ['RegOpenKeyExW', 'RegQueryValueExW', 'RegCloseKey'],
  );
  t.is(first.events[11]!.api?.category, 'registry');
  t.is(
    new Set(traces.map((x) => x.episode.sequenceHash)).size,
    1_210,
    'distinct sequences as the data README says',
  );
});

test('names-layout CSV with quoted cells and a text label column; bad labels are reported, not fatal', (t) => {
  const dir = tmp();
  const file = join(dir, 'calls.csv');
  writeFileSync(
    file,
    'c0,c1,c2,label\nNtOpenFile,"NtReadFile",NtClose,malicious\nGetTickCount,,Sleep,benign\nA,B,C,maybe\n',
  );
  const { traces, skippedRows } = importCsv(file);
  t.is(traces.length, 2);
  t.deepEqual(
    traces[1]!.events.map((e) => e.api?.name),
    ['GetTickCount', 'Sleep'],
  );
  t.is(traces[0]!.events[1]!.fileReadCount, 1);
  t.is(skippedRows.length, 1);
  t.regex(skippedRows[0]!.reason, /maybe/);
});

test('every bundled CAPE report imports: calls of all processes in time order, categories from the report', (t) => {
  const dirs = [join(DATA, 'cape-reports'), ...(existsSync(SHARED) ? [SHARED] : [])];
  let reports = 0;
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json.gz'))) {
      const { trace, processes, notes } = importCape(join(dir, f));
      reports++;
      const times = trace.events.map((e) => e.timestamp);
      t.true(
        times.every((x, i) => i === 0 || x >= times[i - 1]!),
        `${f}: timestamps ordered`,
      );
      t.true(trace.events.every((e, i) => e.seq === i));
      t.is(trace.episode.events, trace.events.length);
      if (processes === 0)
        t.true(
          notes.some((n) => /no behavior/.test(n)),
          `${f}: empty report is noted`,
        );
    }
  }
  t.true(reports >= 8);
  const qakbot = importCape(
    join(
      DATA,
      'cape-reports/cape__v2.2__0000a65749f5902c4d82ffa701198038f0b4870b00a27cfca109f8f933476d82.json.gz',
    ),
  );
  t.is(qakbot.trace.episode.family, 'QakBot');
  t.is(qakbot.processes, 17);
  t.is(qakbot.trace.events.length, 26_219);
  t.true(new Set(qakbot.trace.events.map((e) => e.api?.category)).size >= 5, 'several categories');
  t.is(qakbot.trace.episode.artifactType, 'exe');
});

test('a CAPE report with malformed parts imports what it can and notes what it skipped', (t) => {
  const file = join(tmp(), 'odd.json');
  writeFileSync(
    file,
    JSON.stringify({
      behavior: {
        processes: [
          { calls: 'not a list' },
          { calls: [{ api: '' }, { category: 'file' }, { api: 'NtClose', timestamp: 1 }] },
        ],
      },
    }),
  );
  const { trace, processes, notes } = importCape(file);
  t.is(processes, 2);
  t.deepEqual(
    trace.events.map((e) => e.api?.name),
    ['NtClose'],
  );
  t.true(notes.includes('1 processes had a calls field that is not a list: skipped'), notes.join());
  t.true(notes.includes('2 calls had no API name: skipped'), notes.join());
});

test('JSONL round trip keeps every event; bad lines are counted with their number', async (t) => {
  const { traces } = importCsv(join(DATA, 'oliveira-balanced/api_calls.csv'), { names });
  const dir = tmp();
  const file = join(dir, 'o.jsonl');
  await writeRecorded(file, traces.slice(0, 50));
  writeFileSync(file, `${readFileSync(file, 'utf8')}${'not json\n'.repeat(10)}`);
  const { traces: back, report } = await readRecorded(file);
  t.is(back.length, 50);
  t.deepEqual(back[7]!.events, traces[7]!.events);
  t.is(report.badLines.length, 10);
  t.is(report.badLines[0]!.line, 50 * 101 + 1);
  const q = qualityReport(back, report);
  t.false(q.pass, '10 unreadable lines in 5,060 exceed the default 0.1%');
  t.true(q.problems.some((p) => /10 unreadable lines/.test(p)));
  t.is(
    Object.values(q.labels).reduce((a, b) => a + b, 0),
    50,
  );
});

test('a file that cannot be read whole is an error naming it and where it broke, not a partial read', async (t) => {
  const { traces } = importCsv(join(DATA, 'oliveira-balanced/api_calls.csv'), { names });
  const dir = tmp();
  const text = traces
    .slice(0, 200)
    .flatMap((tr) => [tr.episode, ...tr.events].map((r) => JSON.stringify(r)))
    .join('\n');
  const zipped = gzipSync(text);
  writeFileSync(join(dir, 'cut.jsonl.gz'), zipped.subarray(0, zipped.length >> 1));
  await t.throwsAsync(readRecorded(join(dir, 'cut.jsonl.gz')), {
    code: 'WARDEN_INVALID_INPUT',
    message: /cut\.jsonl\.gz: broken gzip after line \d+: unexpected end of file/,
  });
  await t.throwsAsync(readRecorded(join(dir, 'missing.jsonl')), {
    message: /missing\.jsonl: cannot read it: ENOENT/,
  });
  writeFileSync(join(dir, 'names.json'), '[1, 2]');
  writeFileSync(join(dir, 'header.csv'), 'call_1,call_2,label\n');
  const cli = await runCli([
    'import',
    'csv',
    join(dir, 'header.csv'),
    '--out',
    join(dir, 'h.jsonl'),
  ]);
  t.is(cli.code, 1);
  t.regex(cli.text, /header\.csv: no data rows below the header/);
  const badNames = await runCli([
    'import',
    'csv',
    join(dir, 'header.csv'),
    '--names',
    join(dir, 'names.json'),
    '--out',
    join(dir, 'h.jsonl'),
  ]);
  t.is(badNames.code, 1);
  t.regex(badNames.text, /names\.json: expected a JSON object from call id to API name/);
});

test('the split is by distinct sequence: no sequence on both sides, about a quarter held out', (t) => {
  const { traces } = importCsv(join(DATA, 'oliveira-balanced/api_calls.csv'), { names });
  const train = splitTraces(traces, 'train');
  const test_ = splitTraces(traces, 'test');
  t.is(train.length + test_.length, traces.length);
  const trainSeqs = new Set(train.map((x) => x.episode.sequenceHash));
  t.true(test_.every((x) => !trainSeqs.has(x.episode.sequenceHash)));
  const distinctTest = new Set(test_.map((x) => x.episode.sequenceHash)).size;
  t.true(distinctTest > 200 && distinctTest < 410, `${distinctTest} of 1210 sequences held out`);
  t.deepEqual(
    splitTraces([...traces].reverse(), 'test')
      .map((x) => x.episode.episodeId)
      .sort(),
    test_.map((x) => x.episode.episodeId).sort(),
    'stable under reordering',
  );
});
