// Pattern store on the embedded PostgreSQL: sustained writes through DbWriter (batched unnest,
// binary features, four batches in flight, idempotent keys) against row-at-a-time INSERTs in the
// same run, then p50/p99 of a 10-nearest-neighbour query, a by-type query and a time-range query
// with 1,000,000 stored patterns.

import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type DbRecord, DbWriter } from '../src/actors/db-writer/writer.ts';
import { createPool } from '../src/db/connect.ts';
import { startEmbedded } from '../src/db/embedded.ts';
import { assignMissingCells, loadCentroids, reindexPatterns } from '../src/db/ivf-store.ts';
import { Journal } from '../src/db/journal.ts';
import { migrate } from '../src/db/migrations.ts';
import { byAttackType, byTimeRange, DEFAULT_CANDIDATES, nearest } from '../src/db/patterns.ts';
import type { AttackPattern } from '../src/messages/pattern.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { tempDir } from '../test/temp-dir.ts';
import { fmtRate, printLatency, summarize, writeResult } from './lib.ts';

const DIM = 64;
const TYPES = [
  'injection',
  'persistence',
  'network',
  'ransomware',
  'file-tampering',
  'QakBot',
  'Emotet',
  'unknown',
];
const T0 = Date.UTC(2026, 0, 1);

/** Deterministic noise in [0, 1). */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

// State vectors cluster (samples of one family behave alike): 256 centres, each pattern a centre
// plus noise. Uniform random 64-dim vectors would be a worst case no real store sees.
const CENTRES = Array.from({ length: 256 }, (_, c) => {
  const r = lcg(c + 1);
  return Array.from({ length: DIM }, () => (r() < 0.6 ? 0 : r()));
});

function features(i: number): number[] {
  const r = lcg(i * 2654435761);
  const centre = CENTRES[i % CENTRES.length]!;
  return centre.map((v) =>
    Math.min(1, Math.max(0, Math.round((v + (r() - 0.5) * 0.1) * 1000) / 1000)),
  );
}

function pattern(i: number): AttackPattern {
  const features_ = features(i);
  return {
    type: 'attack-pattern',
    patternId: `p${i}`,
    features: features_,
    action: 2,
    reward: 1,
    attackType: TYPES[i % TYPES.length]!,
    confidence: (i % 100) / 100,
    timestamp: T0 + i * 1000,
    modelVersion: 'v1',
    episodeId: `e${i}`,
    stage: 1,
  };
}

async function timeQueries(n: number, fn: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 100; i++) await fn(i + 100_000); // warm-up on other queries, not timed
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    lat.push((performance.now() - t) * 1000);
  }
  return summarize(lat);
}

export async function run(args: string[]): Promise<void> {
  const total = Number(args[0] ?? 1_000_000);
  const dir = join(tempDir('warden-bench-pg-'), 'data');
  const journalDir = tempDir('warden-bench-j-');
  const server = await startEmbedded(dir, silentLogger);
  const pool = createPool(server.url, silentLogger, 6);
  const client = await pool.connect();
  await migrate(client);
  client.release();
  const headline: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  console.log(
    `db bench: embedded PostgreSQL, ${DIM}-dim cube features filed into cells (inverted file, db/ivf.ts), ${total.toLocaleString('en')} patterns`,
  );
  try {
    // Baseline: one INSERT per row (what a naive writer does), 2,000 rows.
    let t = performance.now();
    for (let i = 0; i < 2_000; i++) {
      const p = pattern(total + i);
      await pool.query(
        `INSERT INTO attack_patterns (pattern_id, features, action, reward, attack_type, confidence, created_at, model_version, episode_id, stage)
         VALUES ($1, cube($2::float8[]), $3, $4, $5, $6, to_timestamp($7 / 1000.0), $8, $9, $10) ON CONFLICT DO NOTHING`,
        [
          p.patternId,
          p.features,
          p.action,
          p.reward,
          p.attackType,
          p.confidence,
          p.timestamp,
          p.modelVersion,
          p.episodeId,
          p.stage,
        ],
      );
    }
    const baseline = 2_000 / ((performance.now() - t) / 1000);
    console.log(`  baseline: row-at-a-time INSERT ${fmtRate(baseline)} rows/s`);
    headline['baseline single-row inserts rows/s'] = baseline;

    const writer = new DbWriter(pool, new Journal<DbRecord>(journalDir, 1 << 30), silentLogger);
    const batch = 5_000; // database.batchRows' default
    const failed: string[] = [];
    const rates: number[] = [];
    t = performance.now();
    let windowStart = t;
    for (let i = 0; i < total; i += batch) {
      const rows = Array.from({ length: Math.min(batch, total - i) }, (_, k) => pattern(i + k));
      // As the actor does: up to four batches in flight (database.writeConnections).
      await writer.submit(rows, (outcome) => {
        if (outcome !== 'persisted') failed.push(`batch ${i}: ${outcome}`);
      });
      if ((i / batch) % 20 === 19) {
        const now = performance.now();
        rates.push((20 * batch) / ((now - windowStart) / 1000));
        windowStart = now;
        process.stdout.write(
          `\r  written ${(i + batch).toLocaleString('en')}  (${fmtRate(rates.at(-1)!)} rows/s)   `,
        );
      }
    }
    await writer.drained();
    if (failed.length > 0) throw new Error(`not persisted: ${failed.join(', ')}`);
    const sustained = total / ((performance.now() - t) / 1000);
    process.stdout.write('\n');
    console.log(
      `  DbWriter sustained: ${fmtRate(sustained)} rows/s over ${total.toLocaleString('en')} rows (first window ${fmtRate(rates[0] ?? 0)}, last ${fmtRate(rates.at(-1) ?? 0)}) → ×${(sustained / baseline).toFixed(1)} over row-at-a-time`,
    );
    headline['DbWriter sustained rows/s'] = sustained;
    details.windows = rates;
    // Cells were trained by the writer at 20k rows; rows written before it saw them get filed now.
    const centroids = await loadCentroids(pool, 0);
    if (centroids) {
      const late = await assignMissingCells(pool, centroids);
      console.log(
        `  cells trained during the writes; ${late.toLocaleString('en')} early rows filed afterwards`,
      );
    }
    // Rows of a cell stored together (maintenance, like VACUUM: `warden patterns reindex`): a
    // query then reads a few contiguous pages per cell instead of one page per row.
    const reindex = await reindexPatterns(pool);
    console.log(
      `  reindex (${reindex.trained ? `retrained, generation ${reindex.generation}; ` : ''}file + count + CLUSTER by cell): ${reindex.seconds.toFixed(1)} s`,
    );
    headline['reindex s'] = reindex.seconds;
    await pool.query('VACUUM ANALYZE attack_patterns');
    // The reindex rewrote ~2 GB: flushed now, so the queries below meet a store at rest rather
    // than a checkpoint writing out the bulk load (which alone put by-type p99 at 4 ms).
    await pool.query('CHECKPOINT');

    // Queries: fresh vectors near stored ones (ids beyond the stored range).
    const query = (i: number) => features(total + 10_000 + i);
    // Exact answers for recall, from a full scan (the baseline a store without an index pays).
    const exactIds: Set<string>[] = [];
    const exactLat: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const exact = await pool.query<{ id: string }>(
        `SELECT pattern_id AS id FROM attack_patterns ORDER BY features <-> cube($1::float8[]) LIMIT 10`,
        [query(i)],
      );
      exactLat.push((performance.now() - t0) * 1000);
      exactIds.push(new Set(exact.rows.map((r) => r.id)));
    }
    printLatency('10-NN exact scan (baseline)', summarize(exactLat));
    let knn = summarize([]);
    for (const candidates of new Set([1_000, DEFAULT_CANDIDATES, 2_400])) {
      const lat = await timeQueries(500, (i) => nearest(pool, query(i), 10, candidates));
      let hits = 0;
      for (let i = 0; i < 20; i++) {
        const approx = await nearest(pool, query(i), 10, candidates);
        hits += approx.filter((r) => exactIds[i]!.has(r.patternId)).length;
      }
      printLatency(`10-NN, ~${candidates.toLocaleString('en')} candidate rows`, lat);
      console.log(`    recall@10 against the exact scan: ${((hits / 200) * 100).toFixed(1)}%`);
      headline[`knn10 candidates ${candidates} p99 µs`] = lat.p99;
      headline[`knn10 candidates ${candidates} recall`] = hits / 200;
      if (candidates === DEFAULT_CANDIDATES) {
        knn = lat;
        headline['knn10 recall'] = hits / 200;
      }
    }
    headline['knn10 exact scan p50 µs'] = summarize(exactLat).p50;
    const type = await timeQueries(500, (i) => byAttackType(pool, TYPES[i % TYPES.length]!, 10));
    const range = await timeQueries(500, (i) => {
      const from = new Date(T0 + ((i * 7919) % total) * 1000);
      return byTimeRange(pool, from, new Date(from.getTime() + 60_000), 100);
    });

    printLatency('by attack type, newest 10', type);
    printLatency('time range, 1 minute (≤ 60 rows)', range);
    Object.assign(headline, {
      'knn10 p50 µs': knn.p50,
      'knn10 p99 µs': knn.p99,
      'by type p50 µs': type.p50,
      'by type p99 µs': type.p99,
      'time range p50 µs': range.p50,
      'time range p99 µs': range.p99,
    });
    details.queries = { knn, type, range };
  } finally {
    await pool.end();
    await server.stop();
    // A 1M-row store is ~2 GB: removed unless BENCH_KEEP_DB=1 (to look at it afterwards).
    if (process.env.BENCH_KEEP_DB === '1') console.log(`  data kept in ${dir}`);
    else rmSync(dirname(dir), { recursive: true, force: true });
    rmSync(journalDir, { recursive: true, force: true });
  }
  writeResult('db', headline, details);
}
