// What a receiver has accepted from its sandbox, per open (episode, stage): the last telemetry
// sequence number. A resubscribe tells the sandbox where each open stage stands (WatchRequest
// resume_after, the contract's "skip what it already accepted", and started for a stage with
// nothing accepted after its episode-started), and what a sandbox sends again
// anyway — it cannot know what the cut stream delivered — is dropped here and counted, never
// decided twice:
//   - telemetry of a stage at or below the last sequence number accepted for it (the adapter
//     skipped these before, uncounted), or of a stage that has ended;
//   - episode-started of a stage open with none of its telemetry accepted yet (what the contract
//     has a sandbox send again for a stage resume_after does not name);
//   - stage-outcome and stage-failed of a stage that has ended (a second outcome for a finished
//     episode opened a new record, which the episodes actor later closed as partial).
// A start for a stage that has telemetry accepted, or has ended, runs it again from its start: a
// sandbox resuming a stage resume_after names does not start it again, and one that restarted
// may number its episodes from 1 again (the DB writer stores such a run beside the first,
// db-writer/writer.ts).
// Bounded: episodes with an open stage beyond telemetry.maxOpenStages are forgotten oldest first
// (as the adapter forgets stages), and the ended stages remembered are the last ENDED_KEPT.

import type { EpisodeLifecycle, Stage } from '../../messages/episode.ts';
import {
  COL,
  COLUMNS,
  type PackedTelemetry,
  type SequencedLifecycle,
  TelemetryPacker,
} from '../../messages/packed-telemetry.ts';
import { OldestFirstMap } from '../../runtime/oldest-first-map.ts';

/** Ended stages remembered, so that an outcome or event sent again for one is known as such. */
export const ENDED_KEPT = 65_536;
/** At most this many stages in one WatchRequest's resume_after (the most recently active). */
export const RESUME_KEYS_MAX = 10_000;

/** A stage not open (in OpenEpisode.last), and one open with no telemetry accepted yet. */
const CLOSED = -2;
const NONE = -1;

/** A ledger written down (snapshot): [episode id, stage 1's last, stage 2's last, idle ms]. */
export interface LedgerSnapshot {
  readonly open: readonly (readonly [string, number, number, number])[];
  readonly ended: readonly string[];
}

/** The open stages of one episode. */
interface OpenEpisode {
  /** Index 1 and 2: the last sequence number accepted, NONE, or CLOSED. */
  readonly last: Float64Array;
  /** Date.now() of the last event accepted for it. */
  touchedAt: number;
}

const keyOf = (episodeId: string, stage: Stage) => `${episodeId}/${stage}`;

export class StreamLedger {
  readonly #open = new OldestFirstMap<string, OpenEpisode>();
  readonly #ended = new OldestFirstMap<string, true>();
  /** Events dropped as sent again (or after their stage ended), since the receiver started. */
  repeated = 0;
  /** Episodes with open stages forgotten to stay within maxOpenStages. */
  evicted = 0;

  constructor(private readonly maxOpenStages: number) {}

  /** Open stages (for tests and stats). */
  get openStages(): number {
    let n = 0;
    for (const e of this.#open.values())
      n += (e.last[1] === CLOSED ? 0 : 1) + (e.last[2] === CLOSED ? 0 : 1);
    return n;
  }

  /**
   * Takes a decoded batch: returns it without what was sent before (the same batch when nothing
   * was), and records what it accepted.
   */
  accept(
    telemetry: PackedTelemetry,
    lifecycle: readonly SequencedLifecycle[],
    now = Date.now(),
  ): { telemetry: PackedTelemetry; lifecycle: readonly SequencedLifecycle[] } {
    // Flags of what is kept, made at the first event dropped (most batches drop none).
    let rows: Uint8Array | undefined;
    let events: boolean[] | undefined;
    let next = 0;
    // One lookup per episode per batch (a batch holds a few episodes' events, interleaved), by
    // its index into the batch's strings: null when it has no open stage.
    const byRef: (OpenEpisode | null | undefined)[] = new Array(telemetry.strings.length);
    for (let i = 0; i <= telemetry.count; i++) {
      for (; next < lifecycle.length && lifecycle[next]!.at <= i; next++) {
        byRef.fill(undefined); // a lifecycle event can open or close a stage
        if (this.#lifecycle(lifecycle[next]!.event, now)) {
          if (events) events[next] = true;
        } else {
          events ??= lifecycle.map((_, j) => j < next);
          events[next] = false;
          this.repeated++;
        }
      }
      if (i === telemetry.count) break;
      const ref = telemetry.refs[2 * i]!;
      let cached = byRef[ref];
      if (cached === undefined) {
        cached = this.#open.get(telemetry.strings[ref]!) ?? null;
        byRef[ref] = cached;
      }
      const stage: Stage = telemetry.numbers[i * COLUMNS + COL.stage] === 2 ? 2 : 1;
      const seq = telemetry.numbers[i * COLUMNS + COL.seq]!;
      let fresh: boolean;
      const last = cached === null ? CLOSED : cached.last[stage]!;
      if (cached !== null && last !== CLOSED) {
        fresh = seq > last;
        if (fresh) {
          cached.last[stage] = seq;
          cached.touchedAt = now;
        }
      } else {
        // The stage's first event here: unless the stage ended, it opens it (a sandbox need not
        // send episode-started first).
        const episodeId = telemetry.strings[ref]!;
        fresh = !this.#ended.has(keyOf(episodeId, stage));
        if (fresh) {
          cached = this.#openStage(episodeId, stage, now);
          cached.last[stage] = seq;
          byRef[ref] = cached;
        }
      }
      if (fresh) {
        if (rows) rows[i] = 1;
      } else {
        if (!rows) {
          rows = new Uint8Array(telemetry.count);
          rows.fill(1, 0, i);
        }
        this.repeated++;
      }
    }
    if (!rows && !events) return { telemetry, lifecycle };
    // Each lifecycle event's place among the telemetry kept.
    const before = (at: number) => {
      if (!rows) return at;
      let n = 0;
      for (let i = 0; i < at; i++) n += rows[i]!;
      return n;
    };
    return {
      telemetry: rows ? selectRows(telemetry, rows) : telemetry,
      lifecycle: lifecycle
        .filter((_, j) => events?.[j] !== false)
        .map((l) => (rows ? { at: before(l.at), event: l.event } : l)),
    };
  }

  /** Whether a lifecycle event is new; records it. */
  #lifecycle(e: EpisodeLifecycle, now: number): boolean {
    const k = keyOf(e.episodeId, e.stage);
    const open = this.#open.get(e.episodeId);
    const isOpen = open !== undefined && open.last[e.stage] !== CLOSED;
    if (e.type === 'episode-started') {
      if (isOpen && open.last[e.stage] === NONE) return false;
      this.#ended.delete(k); // run again under the same id
      this.#openStage(e.episodeId, e.stage, now).last[e.stage] = NONE;
      return true;
    }
    // stage-outcome, stage-failed
    if (this.#ended.has(k)) return false;
    if (open && isOpen) {
      open.last[e.stage] = CLOSED;
      if (open.last[1] === CLOSED && open.last[2] === CLOSED) this.#open.delete(e.episodeId);
    }
    this.#ended.set(k, true);
    while (this.#ended.size > ENDED_KEPT) this.#ended.shift();
    return true;
  }

  #openStage(episodeId: string, stage: Stage, now: number): OpenEpisode {
    let e = this.#open.get(episodeId);
    if (!e) {
      while (this.#open.size >= this.maxOpenStages) {
        this.#open.shift();
        this.evicted++;
      }
      e = { last: new Float64Array([CLOSED, CLOSED, CLOSED]), touchedAt: now };
      this.#open.set(episodeId, e);
    }
    if (e.last[stage] === CLOSED) e.last[stage] = NONE;
    e.touchedAt = now;
    return e;
  }

  /**
   * What the ledger holds, for a Warden that stops to go on after its restart (runtime/resume.ts):
   * each open episode with its stages' last sequence numbers and how long it has been idle (the
   * time Warden is down does not count), and the ended stages, oldest first.
   */
  snapshot(now = Date.now()): LedgerSnapshot {
    return {
      open: [...this.#open].map(([id, e]) => [id, e.last[1]!, e.last[2]!, now - e.touchedAt]),
      ended: [...this.#ended.keys()],
    };
  }

  /** A ledger as `snapshot` left it; what does not read as one is skipped. */
  static restore(snapshot: unknown, maxOpenStages: number, now = Date.now()): StreamLedger {
    const ledger = new StreamLedger(maxOpenStages);
    const s = (snapshot ?? {}) as Partial<LedgerSnapshot>;
    const mark = (v: unknown) =>
      typeof v === 'number' && Number.isSafeInteger(v) && v >= CLOSED ? v : CLOSED;
    for (const row of Array.isArray(s.open) ? s.open : []) {
      if (!Array.isArray(row) || typeof row[0] !== 'string') continue;
      const idle = Number(row[3]);
      ledger.#open.set(row[0], {
        last: new Float64Array([CLOSED, mark(row[1]), mark(row[2])]),
        touchedAt: now - (Number.isFinite(idle) && idle > 0 ? idle : 0),
      });
    }
    for (const k of Array.isArray(s.ended) ? s.ended.slice(-ENDED_KEPT) : [])
      if (typeof k === 'string') ledger.#ended.set(k, true);
    return ledger;
  }

  /**
   * resume_after for a new Watch: the last sequence number accepted per open stage that has had
   * an event within `maxIdleMs` (an older one is the episodes actor's timeout to close, and a
   * restarted sandbox no longer knows it), at most `limit`, the most recently active first.
   */
  resumeAfter(now = Date.now(), maxIdleMs = Number.POSITIVE_INFINITY, limit = RESUME_KEYS_MAX) {
    const active: [string, number, number][] = [];
    for (const [episodeId, e] of this.#open) {
      if (now - e.touchedAt > maxIdleMs) continue;
      for (const stage of [1, 2] as const) {
        const last = e.last[stage]!;
        if (last >= 0) active.push([keyOf(episodeId, stage), last, e.touchedAt]);
      }
    }
    if (active.length > limit) active.sort((a, b) => b[2] - a[2]);
    return Object.fromEntries(active.slice(0, limit).map(([k, last]) => [k, last]));
  }

  /**
   * WatchRequest started for a new Watch: the open stages whose episode-started was accepted and
   * none of their telemetry yet (resume_after cannot name them: a sequence number may start at
   * 0), in the same window and limit. The sandbox sends their telemetry from the first, and the
   * outcome of one that ended since — which, not named, was lost with the cut that took it.
   */
  started(now = Date.now(), maxIdleMs = Number.POSITIVE_INFINITY, limit = RESUME_KEYS_MAX) {
    const active: [string, number][] = [];
    for (const [episodeId, e] of this.#open) {
      if (now - e.touchedAt > maxIdleMs) continue;
      for (const stage of [1, 2] as const)
        if (e.last[stage] === NONE) active.push([keyOf(episodeId, stage), e.touchedAt]);
    }
    if (active.length > limit) active.sort((a, b) => b[1] - a[1]);
    return active.slice(0, limit).map(([k]) => k);
  }
}

/** The rows of `p` whose keep flag is set, in order. */
export function selectRows(p: PackedTelemetry, keep: Uint8Array): PackedTelemetry {
  const packer = new TelemetryPacker(p.count);
  for (let i = 0; i < p.count; i++) {
    if (!keep[i]) continue;
    const api = p.refs[2 * i + 1]!;
    packer.addColumns(
      p.numbers.subarray(i * COLUMNS, (i + 1) * COLUMNS),
      p.strings[p.refs[2 * i]!]!,
      api < 0 ? null : p.strings[api]!,
    );
  }
  return packer.finish();
}
