// Which module implements each actor. An actor in the configured placement that is not listed
// here is not built yet; the runtime says so at start and leaves it out.

export const ACTOR_MODULES: Readonly<Record<string, string>> = {
  adapter: new URL('./adapter/index.ts', import.meta.url).href,
  'db-writer': new URL('./db-writer/index.ts', import.meta.url).href,
  dispatcher: new URL('./dispatcher/index.ts', import.meta.url).href,
  episodes: new URL('./episodes/index.ts', import.meta.url).href,
  'experience-feed': new URL('./experience-feed/index.ts', import.meta.url).href,
  learner: new URL('./learner/index.ts', import.meta.url).href,
  receiver: new URL('./receiver/index.ts', import.meta.url).href,
  registry: new URL('./registry/index.ts', import.meta.url).href,
};
