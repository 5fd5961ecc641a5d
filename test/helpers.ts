// Shared test helpers: configuration with overrides, and waiting for system messages.

import { mergeDeep } from '../src/config/load.ts';
import type { WardenConfig } from '../src/config/schema.ts';
import { validateConfig } from '../src/config/validate.ts';
import type { Message } from '../src/runtime/actor.ts';
import type { ActorSystem } from '../src/runtime/system.ts';

export function testConfig(overrides: Record<string, unknown> = {}): WardenConfig {
  const { config } = validateConfig(
    mergeDeep(
      {
        logging: { level: 'silent' },
        runtime: { supervision: { backoffInitialMs: 10, backoffMaxMs: 50 } },
      },
      overrides,
    ),
  );
  return config;
}

export const fixtureActor = (name: string) =>
  new URL(`./fixtures/actors/${name}.ts`, import.meta.url).href;

/** Records every SYSTEM message from the moment it is created; waitFor sees past and future ones. */
export class Inbox {
  readonly messages: (Message & Record<string, unknown>)[] = [];
  #waiters: {
    predicate: (m: Message & Record<string, unknown>) => boolean;
    resolve: (m: Message) => void;
  }[] = [];

  constructor(system: ActorSystem) {
    system.on('message', ({ message }) => {
      const m = message as Message & Record<string, unknown>;
      this.messages.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.predicate(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  waitFor<T = Message & Record<string, unknown>>(
    predicate: (m: Message & Record<string, unknown>) => boolean,
    ms = 10_000,
  ): Promise<T> {
    const found = this.messages.find(predicate);
    if (found) return Promise.resolve(found as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${ms} ms`)), ms);
      this.#waiters.push({
        predicate,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as T);
        },
      });
    });
  }
}
