// `npm run bench -- <name> [...]`: runs one benchmark by name.

const benches: Record<string, () => Promise<{ run: (args: string[]) => Promise<void> }>> = {
  db: () => import('./db.ts'),
  e2e: () => import('./e2e.ts'),
  finetune: () => import('./finetune.ts'),
  fleet: () => import('./fleet.ts'),
  inference: () => import('./inference.ts'),
  learner: () => import('./learner.ts'),
  receiver: () => import('./receiver.ts'),
  replay: () => import('./replay.ts'),
  ring: () => import('./ring.ts'),
  tracing: () => import('./tracing.ts'),
};

const [name, ...args] = process.argv.slice(2);
const load = name === undefined ? undefined : benches[name];
if (!load) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
await (await load()).run(args);
