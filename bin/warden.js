#!/usr/bin/env node
// The `warden` command. Sources are TypeScript, loaded through tsx here and in every worker
// (src/runtime/worker-boot.mjs), so what runs in production is what the tests ran.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../src/cli/main.ts');
process.exitCode = await run(process.argv);
