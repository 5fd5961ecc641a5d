// makeDirectory: missing parents made one level at a time; a level the system refuses is an error,
// also under /proc, where Node's recursive mkdir never returns.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { makeDirectory } from '../../src/runtime/make-directory.ts';
import { tsSnippet } from '../helpers.ts';
import { tempDir } from '../temp-dir.ts';

test('makes a directory and its missing parents; an existing one is left as it is', (t) => {
  const root = tempDir('warden-mkdir-');
  const dir = join(root, 'a', 'b', 'c');
  makeDirectory(dir);
  t.true(statSync(dir).isDirectory());
  t.notThrows(() => makeDirectory(dir));
  writeFileSync(join(root, 'file'), '');
  t.throws(() => makeDirectory(join(root, 'file', 'x')), { code: 'ENOTDIR' });
});

(existsSync('/proc/self') ? test : test.skip)(
  'a path under /proc is an error, not a hang (in a child process, killed after 10 s if it hangs)',
  (t) => {
    const run = spawnSync(
      process.execPath,
      tsSnippet(
        `import { makeDirectory } from './src/runtime/make-directory.ts';
         try { makeDirectory('/proc/warden-test/x'); console.log('made'); }
         catch (e) { console.log(e.code); }`,
      ),
      { encoding: 'utf8', timeout: 10_000 },
    );
    t.is(run.signal, null, 'it returned');
    t.is(run.stdout.trim(), 'ENOENT');
  },
);
