// Property 22 on the episodes actor (its own worker thread): the sandbox's feedback on each
// action — applied, not applied, failed after every retry — is part of that step's reward in the
// stored trajectory and in the replay.

import test from 'ava';
import {
  DECISION_SUMMARIES,
  type DecisionBatch,
  type DecisionSummary,
  type FailureBatch,
  type ResultBatch,
} from '../../src/actors/adapter/index.ts';
import { ACTOR_MODULES } from '../../src/actors/index.ts';
import { ACTIONS, type ActionId } from '../../src/messages/action.ts';
import {
  ACTION_FAILURES,
  ACTION_FEEDBACK,
  type ActionFailed,
} from '../../src/messages/feedback.ts';
import type { EpisodeTrajectory } from '../../src/messages/trajectory.ts';
import { ReplayStorage } from '../../src/runtime/shared/replay-storage.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { fixtureActor, Inbox, testConfig, until } from '../helpers.ts';

test('feedback on each action is in the reward of its step', async (t) => {
  const config = testConfig({
    runtime: { placement: { control: ['episodes'], sinks: ['db-writer', 'learner'] } },
    telemetry: { stateDim: 32 },
  });
  const replay = ReplayStorage.create({ capacity: 10_000, dim: 32 });
  const system = new ActorSystem({
    config,
    shared: { replay: replay.buffer },
    modules: { ...ACTOR_MODULES, 'db-writer': fixtureActor('sink'), learner: fixtureActor('sink') },
  });
  const inbox = new Inbox(system);
  await system.start();
  try {
    const actions: ActionId[] = [
      ACTIONS.RAISE_ISOLATION,
      ACTIONS.RAISE_ISOLATION,
      ACTIONS.CONTINUE,
      ACTIONS.TERMINATE,
    ];
    const decision = (seq: number, action: ActionId): DecisionSummary => ({
      episodeId: 'ep/fb',
      stage: 1,
      seq,
      action,
      confidence: 0.5,
      modelVersion: 'rules',
      source: 'rules',
      decidedAt: Date.now(),
      latencyMs: 1,
    });
    const stateOf = (seq: number) => Array.from({ length: 32 }, (_, i) => (i + seq) / 100);
    const batch: DecisionBatch = {
      type: 'decisions',
      items: DECISION_SUMMARIES.pack(actions.map((a, seq) => decision(seq, a))),
      states: Float32Array.from(actions.flatMap((_, seq) => stateOf(seq))),
    };
    system.send('episodes', batch);
    const base = {
      sandboxId: 'lab',
      episodeId: 'ep/fb',
      stage: 1 as const,
      action: ACTIONS.RAISE_ISOLATION,
      timestamp: Date.now(),
    };
    // As the dispatcher sends them: confirmations in a packed batch, failed deliveries in another.
    const results: ResultBatch = {
      type: 'action-results',
      items: ACTION_FEEDBACK.pack([
        {
          type: 'action-feedback',
          ...base,
          actionId: 'ep/fb/1/0',
          confirmed: true,
          applied: true,
          stageEnded: false,
          detail: 'isolated',
        },
        {
          type: 'action-feedback',
          ...base,
          actionId: 'ep/fb/1/1',
          confirmed: true,
          applied: false,
          stageEnded: false,
          detail: 'already at the highest level',
        },
      ]),
    };
    system.send('episodes', results);
    const failed: ActionFailed = {
      type: 'action-failed',
      sandboxId: 'lab',
      episodeId: 'ep/fb',
      actionId: 'ep/fb/1/3',
      attempts: 4,
      lastError: 'unavailable',
      timestamp: Date.now(),
    };
    const failures: FailureBatch = {
      type: 'action-failures',
      items: ACTION_FAILURES.pack([failed]),
    };
    system.send('episodes', failures);
    system.send('episodes', {
      type: 'stage-outcome',
      sandboxId: 'lab',
      episodeId: 'ep/fb',
      stage: 1,
      timestamp: Date.now(),
      eventsObserved: 4,
      sandboxDetected: true,
      cleaned: false,
      cleaningSucceeded: false,
      groundTruth: 'malicious',
      family: null,
    });
    system.send('episodes', {
      type: 'stage-failed',
      sandboxId: 'lab',
      episodeId: 'ep/fb',
      stage: 2,
      timestamp: Date.now(),
      reason: 'other',
      detail: 'end of test',
    });
    const stored = (await inbox.waitFor(
      (m) => m.type === 'sunk' && (m.message as { type: string }).type === 'episode-trajectory',
    )) as unknown as { message: EpisodeTrajectory };
    const r = config.rewards;
    const rewards = stored.message.steps.map((s) => s.reward);
    const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
    t.true(close(rewards[0]!, r.perEvent + r.isolation), 'applied: its cost only');
    t.true(
      close(rewards[1]!, r.perEvent + r.isolation + r.unapplied),
      'not applied: the unapplied cost too',
    );
    t.true(close(rewards[2]!, r.perEvent), 'continue: nothing to apply');
    t.true(
      close(rewards[3]!, r.perEvent + r.unapplied + r.truePositive),
      'failed dispatch: unapplied, then the verdict',
    );
    const f32 = (xs: readonly number[]) => Array.from(Float32Array.from(xs));
    t.deepEqual(
      stored.message.steps.map((s) => Array.from(s.state)),
      actions.map((_, seq) => f32(stateOf(seq))),
      'each step holds its own state from the batch',
    );
    t.deepEqual(Array.from(replay.read(2)!.state), f32(stateOf(2)));
    t.deepEqual(Array.from(replay.read(2)!.nextState), f32(stateOf(3)), 'and the next one');
    const stats = await system.stats();
    const episodes = stats.threads.flatMap((th) => th.actors).find((a) => a.actor === 'episodes')!;
    t.is(episodes.custom.feedbackRewarded, 3, 'every feedback matched to its step');
    t.true(close(replay.read(1)!.reward, rewards[1]!), 'the replay holds the same rewards');
  } finally {
    await system.stop();
  }
});

test('stages in two sandboxes: stage 2 ending before stage 1 still gives one complete trajectory of both stages; a stage started again under its id ends the run before it', async (t) => {
  const config = testConfig({
    runtime: { placement: { control: ['episodes'], sinks: ['db-writer', 'learner'] } },
    telemetry: { stateDim: 32 },
  });
  const system = new ActorSystem({
    config,
    shared: { replay: ReplayStorage.create({ capacity: 10_000, dim: 32 }).buffer },
    modules: { ...ACTOR_MODULES, 'db-writer': fixtureActor('sink'), learner: fixtureActor('sink') },
  });
  const inbox = new Inbox(system);
  await system.start();
  try {
    const at = Date.now();
    const started = (episodeId: string, stage: 1 | 2, sandboxId: string) => ({
      type: 'episode-started' as const,
      sandboxId,
      episodeId,
      stage,
      timestamp: at,
      artifactHash: 'abc',
      artifactType: 'exe' as const,
      cleaned: false,
    });
    const outcome = (episodeId: string, stage: 1 | 2, sandboxId: string) => ({
      type: 'stage-outcome' as const,
      sandboxId,
      episodeId,
      stage,
      timestamp: at,
      eventsObserved: 1,
      sandboxDetected: false,
      cleaned: false,
      cleaningSucceeded: false,
      groundTruth: 'benign' as const,
      family: null,
    });
    const decided = (episodeId: string, stage: 1 | 2): DecisionBatch => ({
      type: 'decisions',
      items: DECISION_SUMMARIES.pack([
        {
          episodeId,
          stage,
          seq: 0,
          action: ACTIONS.RELEASE,
          confidence: 0.9,
          modelVersion: 'rules',
          source: 'rules',
          decidedAt: at,
          latencyMs: 1,
        },
      ]),
      states: new Float32Array(32).fill(stage / 10),
    });
    const send = (...messages: Parameters<typeof system.send<'episodes'>>[1][]) => {
      for (const m of messages) system.send('episodes', m);
    };
    // The positive sandbox's stage-1 outcome is late; the negative one's stage 2 ends first.
    send(
      started('pair', 1, 'positive'),
      decided('pair', 1),
      started('pair', 2, 'negative'),
      decided('pair', 2),
      outcome('pair', 2, 'negative'),
      outcome('pair', 1, 'positive'),
    );
    // A Warden that started mid-episode sees only stage 2: complete at its outcome, not a timeout.
    send(started('late', 2, 'negative'), decided('late', 2), outcome('late', 2, 'negative'));
    const trajectory = (id: string) =>
      inbox.waitFor<{ message: EpisodeTrajectory }>(
        (m) =>
          m.type === 'sunk' &&
          (m.message as EpisodeTrajectory).type === 'episode-trajectory' &&
          (m.message as EpisodeTrajectory).episodeId === id,
      );
    const pair = (await trajectory('pair')).message;
    t.false(pair.partial);
    t.deepEqual(pair.steps.map((s) => s.stage).sort(), [1, 2], 'both stages in one trajectory');
    const late = (await trajectory('late')).message;
    t.false(late.partial);
    t.deepEqual(
      late.steps.map((s) => s.stage),
      [2],
    );
    const trajectories = inbox.messages.filter(
      (m) => m.type === 'sunk' && (m.message as EpisodeTrajectory).type === 'episode-trajectory',
    );
    t.is(trajectories.length, 2, 'no stray record for the late stage-1 outcome');

    // A sandbox that restarted and numbers its episodes anew runs stage 1 of "again" a second
    // time: the first run is over (partial), and the second is a trajectory of its own.
    // The earlier run's feedback comes late, for an action its decision at seq 0 took (terminate),
    // not the second run's (release): it is not taken for the second run's.
    const feedback = (action: ActionId): ResultBatch => ({
      type: 'action-results',
      items: ACTION_FEEDBACK.pack([
        {
          type: 'action-feedback',
          actionId: 'again/1/0',
          sandboxId: 'positive',
          episodeId: 'again',
          stage: 1,
          action,
          confirmed: true,
          applied: true,
          stageEnded: action === ACTIONS.TERMINATE,
          detail: '',
          timestamp: at,
        },
      ]),
    });
    send(
      started('again', 1, 'positive'),
      decided('again', 1),
      started('again', 1, 'positive'),
      decided('again', 1),
      feedback(ACTIONS.TERMINATE),
      feedback(ACTIONS.RELEASE),
      outcome('again', 1, 'positive'),
      started('again', 2, 'negative'),
      decided('again', 2),
      outcome('again', 2, 'negative'),
    );
    const runs = async () =>
      inbox.messages
        .filter((m) => m.type === 'sunk' && (m.message as EpisodeTrajectory).episodeId === 'again')
        .map((m) => m.message as EpisodeTrajectory);
    t.true(await until(async () => (await runs()).length === 2), 'two runs stored');
    const [first, second] = await runs();
    t.true(first!.partial);
    t.is(first!.failureReason, 'stage 1 started again by the sandbox');
    t.deepEqual(first!.steps, [], 'its stage 1 never ended: no transitions of it');
    t.false(second!.partial);
    t.deepEqual(
      second!.steps.map((s) => s.stage).sort(),
      [1, 2],
      'the second run alone: its own stage 1, not both runs merged',
    );
    const stats = await system.stats();
    const episodes = stats.threads.flatMap((th) => th.actors).find((a) => a.actor === 'episodes')!;
    t.is(episodes.custom.feedback, 2);
    t.is(episodes.custom.feedbackRewarded, 1, "only the second run's own feedback matched");
  } finally {
    await system.stop();
  }
});
