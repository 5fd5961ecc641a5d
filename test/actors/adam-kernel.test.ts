// The learner's Adam kernel (WebAssembly): the committed binary is its source compiled, and one
// step moves weights and moments as Adam's definition says, for any vector length.

import { readFileSync } from 'node:fs';
import test from 'ava';
import fc from 'fast-check';
import { compileWat, WASM_SOURCES, wasmPathOf } from '../../scripts/build-wasm.ts';
import { AdamKernel } from '../../src/actors/learner/adam-kernel.ts';
import { ADAM } from '../../src/actors/learner/engine.ts';

test('every committed .wasm is its .wat compiled (run `npm run build:wasm` after editing one)', async (t) => {
  for (const source of WASM_SOURCES) {
    const compiled = await compileWat(source);
    t.deepEqual(
      Buffer.from(readFileSync(wasmPathOf(source))),
      Buffer.from(compiled),
      source.pathname,
    );
  }
});

const finite = fc.float({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true });

test('one kernel step equals Adam computed in float64, for any length, step and clip factor', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 37 }).chain((n) =>
        fc.record({
          p: fc.array(finite, { minLength: n, maxLength: n }),
          m: fc.array(finite, { minLength: n, maxLength: n }),
          v: fc.array(fc.float({ min: 0, max: 10, noNaN: true }), { minLength: n, maxLength: n }),
          g: fc.array(finite, { minLength: n, maxLength: n }),
          step: fc.integer({ min: 1, max: 5000 }),
          lr: fc.double({ min: 1e-5, max: 1e-1, noNaN: true }),
          scale: fc.double({ min: 0.01, max: 1, noNaN: true }),
        }),
      ),
      ({ p, m, v, g, step, lr, scale }) => {
        const k = new AdamKernel(p.length, ADAM);
        k.params.set(p);
        k.m.set(m);
        k.v.set(v);
        k.grad.set(g);
        k.apply(step, lr, scale);
        const { beta1, beta2, epsilon } = ADAM;
        for (let i = 0; i < p.length; i++) {
          const gi = Math.fround(g[i]!) * scale;
          const mi = beta1 * Math.fround(m[i]!) + (1 - beta1) * gi;
          const vi = beta2 * Math.fround(v[i]!) + (1 - beta2) * gi * gi;
          const mHat = mi / (1 - beta1 ** step);
          const vHat = vi / (1 - beta2 ** step);
          const pi = Math.fround(p[i]!) - (lr * mHat) / (Math.sqrt(vHat) + epsilon);
          const close = (a: number, b: number) =>
            Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
          if (!close(k.m[i]!, mi) || !close(k.v[i]!, vi) || !close(k.params[i]!, pi)) {
            t.log({ i, m: [k.m[i], mi], v: [k.v[i], vi], p: [k.params[i], pi] });
            return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('reset zeroes both moments and keeps the weights', (t) => {
  const k = new AdamKernel(10, ADAM);
  k.params.fill(0.5);
  k.grad.fill(1);
  k.apply(1, 0.01, 1);
  t.true(k.m.every((x) => x !== 0) && k.v.every((x) => x !== 0));
  const weights = k.params.slice();
  k.reset();
  t.true(k.m.every((x) => x === 0) && k.v.every((x) => x === 0));
  t.deepEqual(k.params, weights);
});
