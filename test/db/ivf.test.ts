// The inverted file's arithmetic (src/db/ivf.ts): cells read within a row budget, and batched cell
// assignment that agrees with the exact nearest centroid.

import test from 'ava';
import fc from 'fast-check';
import {
  assignCells,
  CELLS,
  type Centroids,
  cellId,
  FINE,
  queryCells,
  splitCells,
  trainCentroids,
} from '../../src/db/ivf.ts';
import { ortNearest } from '../../src/db/ivf-assign.ts';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_103_515_245 + 12_345) >>> 0;
    return s / 2 ** 32;
  };
}

test('a query reads the nearest cells until its row budget, passing over cells that would overshoot it, in two balanced halves', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }),
      fc.integer({ min: 1, max: 5_000 }),
      (x, budget) => {
        const r = lcg(3);
        const c: Centroids = {
          dim: 4,
          generation: 2,
          coarse: Float32Array.from({ length: 128 * 4 }, r),
          fine: Float32Array.from({ length: CELLS * 4 }, r),
          sizes: Int32Array.from({ length: CELLS }, () => Math.floor(r() * 400)),
        };
        const cells = queryCells(c, x, budget);
        const size = (id: number) => c.sizes![id - 2 * CELLS]!;
        const rows = cells.reduce((s, id) => s + size(id), 0);
        // Split for two connections: every cell in exactly one half, halves of similar rows.
        const [a, b] = splitCells(c, cells);
        const rowsOf = (h: number[]) => h.reduce((s, id) => s + size(id), 0);
        const largest = Math.max(0, ...cells.map(size));
        return (
          cells.length >= 1 &&
          cells.every((id) => id >= 2 * CELLS && id < 3 * CELLS) &&
          new Set(cells).size === cells.length &&
          (cells.length === 1 || rows <= 1.5 * budget) &&
          [...a, ...b].sort().join() === [...cells].sort().join() &&
          (b.length === 0 || Math.abs(rowsOf(a) - rowsOf(b)) <= largest)
        );
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('cells assigned in batches by ONNX Runtime agree with the exact nearest coarse, then fine, centroid', async (t) => {
  const r = lcg(11);
  const samples = Array.from({ length: 3_000 }, () => Array.from({ length: 6 }, r));
  const c = await trainCentroids(samples, ortNearest, 3);
  t.is(c.generation, 3);
  const queries = Array.from({ length: 500 }, () => Array.from({ length: 6 }, r));
  const cells = await assignCells(c, [...queries, [1, 2]], ortNearest);
  t.is(cells.at(-1), null, 'another dimension gets no cell');
  const d2 = (x: number[], m: Float32Array, o: number) =>
    x.reduce((s, v, i) => s + (v - m[o + i]!) ** 2, 0);
  let agree = 0;
  for (const [i, x] of queries.entries()) {
    let k = 0;
    for (let j = 1; j < 128; j++) if (d2(x, c.coarse, j * 6) < d2(x, c.coarse, k * 6)) k = j;
    let f = 0;
    for (let j = 1; j < FINE; j++)
      if (d2(x, c.fine, (k * FINE + j) * 6) < d2(x, c.fine, (k * FINE + f) * 6)) f = j;
    if (cells[i] === cellId(c, k * FINE + f)) agree++;
  }
  t.true(agree >= 495, `${agree} of 500 agree (float32 ties may differ)`);
});
