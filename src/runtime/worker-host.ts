// The part of the runtime that lives inside a worker thread: loads the actors placed here, routes
// their messages (locally when the target is in this thread, through main otherwise), answers
// control calls over comlink, and reports crashes to the supervisor.

import { expose } from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { WardenConfig } from '../config/schema.ts';
import type { ActorStats } from '../messages/control.ts';
import type { ActorContext, ActorDefinition, Message } from './actor.ts';
import { ActorCell } from './actor-cell.ts';
import type { HostControl, HostInit, HostToMain, MainToHost } from './host-protocol.ts';
import { closeLogOutput, componentLogger, configureLogOutput, setLogLevel } from './logger.ts';
import { NOOP_TRACER, workerTracing } from './tracing.ts';

/** Worker entry (see worker-boot.mjs). */
export async function main(init: HostInit): Promise<void> {
  const { dataPort, controlPort } = init;
  const post = (m: HostToMain) => dataPort.postMessage(m);
  const cells = new Map<string, ActorCell>();
  let config: WardenConfig = init.config;
  await configureLogOutput(config.logging, init.thread);
  const tracing = init.tracing
    ? workerTracing(init.thread, (spans) => post({ kind: 'spans', spans }))
    : undefined;
  setLogLevel(config.logging.level);

  const deliverLocal = (to: string, message: Message) => {
    const cell = cells.get(to);
    if (!cell) {
      post({ kind: 'dead-letter', to, reason: 'unknown-actor' });
      return;
    }
    if (!cell.enqueue(message)) {
      post({
        kind: 'dead-letter',
        to,
        reason:
          cell.status === 'failed'
            ? 'actor-failed'
            : cell.status === 'stopped'
              ? 'actor-stopped'
              : 'mailbox-full',
      });
    }
  };

  for (const placement of init.actors) {
    const mod = (await import(placement.module)) as { default: ActorDefinition<Message, unknown> };
    const definition = mod.default;
    const ctx: ActorContext = {
      name: placement.name,
      thread: init.thread,
      log: componentLogger(`actor:${placement.name}`, { thread: init.thread }),
      config,
      shared: init.shared,
      tracer: tracing?.tracer ?? NOOP_TRACER,
      send(to, message) {
        if (init.routes[to] === init.thread) deliverLocal(to, message);
        else post({ kind: 'deliver', from: placement.name, to, message });
      },
    };
    const cell = new ActorCell(
      definition,
      ctx,
      config.runtime.mailboxCapacity,
      (error, message) => {
        // The stack, the actor, and what it was handling (with the episode when the message has one).
        const m = message as { type?: unknown; episodeId?: unknown } | undefined;
        ctx.log.error(
          {
            err: error,
            actor: placement.name,
            messageType: m?.type,
            episodeId: typeof m?.episodeId === 'string' ? m.episodeId : undefined,
          },
          'actor crashed',
        );
        post({ kind: 'crashed', actor: placement.name, error });
      },
    );
    cells.set(placement.name, cell);
  }

  dataPort.on('message', (m: MainToHost) => {
    if (m.kind === 'deliver') deliverLocal(m.to, m.message);
  });

  const control: HostControl = {
    ping: () => init.thread,
    async configure(next) {
      config = next;
      setLogLevel(next.logging.level);
      for (const cell of cells.values()) await cell.configure(next);
    },
    async stats(): Promise<ActorStats[]> {
      return [...cells.values()].map((c) => c.stats());
    },
    async restartActor(name) {
      await cells.get(name)?.restart();
    },
    abandonActor(name) {
      return cells.get(name)?.abandon() ?? 0;
    },
    async stop() {
      for (const cell of cells.values()) await cell.stop();
      await tracing?.shutdown(); // the last spans go out before the port closes
      dataPort.close();
      closeLogOutput();
    },
  };
  expose(control, nodeEndpoint(controlPort));

  for (const cell of cells.values()) await cell.start();
  post({ kind: 'ready', thread: init.thread });
}
