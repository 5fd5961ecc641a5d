// The part of the runtime that lives inside a worker thread: loads the actors placed here, routes
// their messages (locally when the target is in this thread, straight to the target's thread over
// the peer mesh, through main to SYSTEM or to a thread that is restarting), answers control calls
// over comlink, and reports crashes to the supervisor.

import type { MessagePort } from 'node:worker_threads';
import { expose } from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { WardenConfig } from '../config/schema.ts';
import type { ActorStats } from '../messages/control.ts';
import type { ActorContext, ActorDefinition, Message } from './actor.ts';
import { ActorCell } from './actor-cell.ts';
import type {
  ActorPlacement,
  Envelope,
  HostControl,
  HostInit,
  HostToMain,
  MainToHost,
} from './host-protocol.ts';
import { closeLogOutput, componentLogger, configureLogOutput, setLogLevel } from './logger.ts';
import { BacklogCounts } from './shared/backlog.ts';
import { threadLoad } from './thread-load.ts';
import { applyThreadPriority } from './thread-priority.ts';
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
  const priority = applyThreadPriority(
    init.actors.map((a) => a.name),
    config.runtime,
  );
  if (priority.error !== undefined) {
    componentLogger('runtime', { thread: init.thread }).warn(
      {
        err: priority.error,
        nice: config.runtime.backgroundNice,
        idle: config.runtime.backgroundIdle,
      },
      priority.nice === undefined
        ? "could not lower this background thread's priority; it runs at the normal one"
        : `this background thread runs at nice ${priority.nice} but not under SCHED_IDLE`,
    );
  }

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

  // The peer mesh (host-protocol.ts): thread → port for sends; ports waiting for a fence are not
  // read until it arrives.
  const peers = new Map<string, MessagePort>();
  const awaitingFence = new Map<string, MessagePort>();
  const read = (port: MessagePort) =>
    port.on('message', (e: Envelope) => deliverLocal(e.to, e.message));
  const attach = (thread: string, port: MessagePort, awaitFence: boolean) => {
    peers.get(thread)?.close();
    peers.set(thread, port);
    // The peer's worker is gone (exit or stop): send through main until it is back.
    port.once('close', () => {
      if (peers.get(thread) === port) peers.delete(thread);
      if (awaitingFence.get(thread) === port) awaitingFence.delete(thread);
    });
    if (awaitFence) awaitingFence.set(thread, port);
    else read(port);
  };
  for (const [thread, port] of Object.entries(init.peers)) attach(thread, port, init.awaitFences);

  // Messages pending per actor (shared/backlog.ts): counted at send, settled when taken up.
  const backlog =
    init.shared.backlog === undefined
      ? undefined
      : new BacklogCounts(init.counted, init.shared.backlog);
  // Actor → thread; actors added or removed here while the thread runs update it.
  const routes: Record<string, string> = { ...init.routes };
  const place = async (placement: ActorPlacement): Promise<ActorCell> => {
    const slot = backlog?.slotOf(placement.name) ?? -1;
    const mod = (await import(placement.module)) as { default: ActorDefinition<Message, unknown> };
    const definition = mod.default;
    const ctx: ActorContext = {
      name: placement.name,
      thread: init.thread,
      log: componentLogger(`actor:${placement.name}`, { thread: init.thread }),
      config,
      shared: init.shared,
      tracer: tracing?.tracer ?? NOOP_TRACER,
      ...(backlog ? { backlog } : {}),
      send(to, message) {
        backlog?.sent(to);
        const thread = routes[to];
        if (thread === init.thread) {
          deliverLocal(to, message);
          return;
        }
        const envelope: Envelope = { kind: 'deliver', from: placement.name, to, message };
        const port = thread === undefined ? undefined : peers.get(thread);
        if (port) port.postMessage(envelope);
        else post(envelope);
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
      () => backlog?.settled(slot),
    );
    backlog?.reset(placement.name);
    cells.set(placement.name, cell);
    return cell;
  };
  for (const placement of init.actors) await place(placement);

  dataPort.on('message', (m: MainToHost) => {
    switch (m.kind) {
      case 'deliver':
        deliverLocal(m.to, m.message);
        break;
      case 'peer-up':
        // Everything this thread routed through main to m.thread goes before the fence.
        post({ kind: 'fence', from: init.thread, to: m.thread });
        attach(m.thread, m.port, false);
        break;
      case 'peer-down':
        peers.get(m.thread)?.close();
        peers.delete(m.thread);
        awaitingFence.delete(m.thread);
        break;
      case 'fence': {
        const port = awaitingFence.get(m.from);
        awaitingFence.delete(m.from);
        if (port) read(port);
        break;
      }
    }
  });

  const control: HostControl = {
    ping: () => init.thread,
    load: threadLoad,
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
    async stopActors(names) {
      // The actors upstream of these stopped just before, in other threads, and what they sent on
      // their way out may still be in this thread's ports (ordered per port, not with this call):
      // let it in until a few turns pass with nothing new, then each cell handles its mailbox.
      const stopping = names.flatMap((n) => cells.get(n) ?? []);
      const accepted = () => stopping.reduce((sum, c) => sum + c.accepted, 0);
      const until = Date.now() + config.runtime.shutdownTimeoutMs / 2;
      for (let last = accepted(), quiet = 0; quiet < 3 && Date.now() < until; ) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const now = accepted();
        quiet = now === last ? quiet + 1 : 0;
        last = now;
      }
      for (const cell of stopping) await cell.stop();
    },
    async addActor(placement) {
      if (cells.has(placement.name)) return;
      routes[placement.name] = init.thread;
      await (await place(placement)).start();
    },
    async removeActor(name) {
      const cell = cells.get(name);
      if (!cell) return;
      // Forgotten first: one added back under this name while this one stops (or hangs in its
      // stop hook) is a new actor, not this one.
      cells.delete(name);
      delete routes[name];
      await cell.stop();
    },
    async stop() {
      for (const cell of cells.values()) await cell.stop();
      await tracing?.shutdown(); // the last spans go out before the port closes
      for (const port of peers.values()) port.close();
      dataPort.close();
      closeLogOutput();
    },
  };
  expose(control, nodeEndpoint(controlPort));

  for (const cell of cells.values()) await cell.start();
  post({ kind: 'ready', thread: init.thread });
}
