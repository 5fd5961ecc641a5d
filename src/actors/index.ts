// Which module implements each actor. An actor in the configured placement that is not listed
// here is not built yet; the runtime says so at start and leaves it out.

export const ACTOR_MODULES: Readonly<Record<string, string>> = {
  'db-writer': new URL('./db-writer/index.ts', import.meta.url).href,
  learner: new URL('./learner/index.ts', import.meta.url).href,
};
