// `npm run build:wasm`: compiles the WebAssembly text sources under src/ to the .wasm files
// beside them, which are committed (the runtime has no compiler; wabt is a dev dependency).
// test/actors/adam-kernel.test.ts recompiles them and fails when a .wasm is out of date.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

export const WASM_SOURCES = [new URL('../src/actors/learner/adam.wat', import.meta.url)];

/** The binary for one .wat source. */
export async function compileWat(source: URL): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(fileURLToPath(source), readFileSync(source, 'utf8'));
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

export const wasmPathOf = (source: URL) => new URL(source.href.replace(/\.wat$/, '.wasm'));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const source of WASM_SOURCES) {
    const binary = await compileWat(source);
    writeFileSync(wasmPathOf(source), binary);
    console.log(`${fileURLToPath(wasmPathOf(source))}: ${binary.length} bytes`);
  }
}
