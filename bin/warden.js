#!/usr/bin/env node
// The `warden` command. Sources are TypeScript, loaded through tsx here and in every worker
// (src/runtime/worker-boot.mjs), so what runs in production is what the tests ran.
import { register } from 'tsx/esm/api';

register();
// Output piped into a reader that went away (`warden … | head`): the rest is not shown, and the
// command carries on to a clean end (a running Warden still stops its database and threads)
// instead of dying on an EPIPE.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error;
  });
const { run } = await import('../src/cli/main.ts');
try {
  process.exitCode = await run(process.argv);
} catch (error) {
  // A failure a user can act on gets one clear line; the stack only when asked for.
  process.stderr.write(`warden: error: ${error?.message ?? error}\n`);
  if (process.env.WARDEN_LOG_LEVEL === 'debug' || process.env.WARDEN_LOG_LEVEL === 'trace')
    process.stderr.write(`${error?.stack}\n`);
  process.exitCode = 1;
}
