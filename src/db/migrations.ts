// Versioned schema migrations, applied at start inside one transaction under an advisory lock
// (several Warden processes may start at once). Applying them twice is a no-op. The role needs:
// CONNECT, CREATE on the schema for migrations (or run them once as owner), then only
// SELECT/INSERT/UPDATE on the tables below — no DELETE (only the operator's `warden db prune`
// needs it), no superuser; `cube` must be installed
// (CREATE EXTENSION needs an owner once; embedded PostgreSQL runs as its owner).

import type pg from 'pg';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'attack patterns, episodes, trajectories, model registry',
    sql: `
      CREATE EXTENSION IF NOT EXISTS cube;

      CREATE TABLE attack_patterns (
        pattern_id    text PRIMARY KEY,               -- idempotency key: a replay never duplicates
        features      cube NOT NULL,                  -- the state at the decision (≤ 100 dims)
        sketch        cube NOT NULL,                  -- 8-dim projection of features (dropped in 4)
        action        smallint NOT NULL CHECK (action BETWEEN 0 AND 5),
        reward        real NOT NULL,
        attack_type   text NOT NULL,
        confidence    real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
        created_at    timestamptz NOT NULL,
        model_version text NOT NULL,
        episode_id    text NOT NULL,
        stage         smallint NOT NULL CHECK (stage IN (1, 2))
      );
      CREATE INDEX attack_patterns_type_time ON attack_patterns (attack_type, created_at DESC);
      CREATE INDEX attack_patterns_time ON attack_patterns (created_at DESC);
      CREATE INDEX attack_patterns_sketch ON attack_patterns USING gist (sketch);

      CREATE TABLE episodes (
        episode_id     text PRIMARY KEY,
        label          text NOT NULL,
        partial        boolean NOT NULL,
        failure_reason text,
        model_version  text NOT NULL,
        total_reward   real NOT NULL,
        transitions    integer NOT NULL,
        started_at     timestamptz NOT NULL,
        ended_at       timestamptz NOT NULL
      );

      CREATE TABLE trajectories (
        episode_id text NOT NULL REFERENCES episodes (episode_id),
        stage      smallint NOT NULL CHECK (stage IN (1, 2)),
        step       integer NOT NULL,
        state      real[] NOT NULL,
        action     smallint NOT NULL,
        reward     real NOT NULL,
        next_state real[] NOT NULL,
        done       boolean NOT NULL,
        PRIMARY KEY (episode_id, stage, step)
      );

      CREATE TABLE model_registry (
        version    text PRIMARY KEY,
        created_at timestamptz NOT NULL,
        metadata   jsonb NOT NULL,
        sha256     text NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'episode artifact hash',
    sql: `ALTER TABLE episodes ADD COLUMN artifact_hash text;`,
  },
  {
    version: 3,
    name: 'scale-out: shared experiences, consumer cursors, published models, host status',
    sql: `
      -- Transitions from every inference host, in insertion order (id) for the learner's cursor.
      CREATE TABLE experiences (
        id            bigserial PRIMARY KEY,
        host_id       text NOT NULL,
        episode_id    text NOT NULL,
        stage         smallint NOT NULL CHECK (stage IN (1, 2)),
        step          integer NOT NULL,
        model_version text NOT NULL,
        decided_at    timestamptz NOT NULL,
        state         real[] NOT NULL,
        action        smallint NOT NULL CHECK (action BETWEEN 0 AND 5),
        reward        real NOT NULL,
        next_state    real[] NOT NULL,
        done          boolean NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        UNIQUE (host_id, episode_id, stage, step)  -- a journal replay never duplicates (and see 11)
      );
      -- Where each consumer (the learner) stopped, moved in the same transaction as it reads.
      CREATE TABLE consumer_cursors (
        consumer text PRIMARY KEY,
        last_id  bigint NOT NULL DEFAULT 0,
        consumed bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      ALTER TABLE model_registry ADD COLUMN onnx bytea, ADD COLUMN signature text;
      CREATE INDEX model_registry_time ON model_registry (created_at DESC);
      -- What every host serves (a fleet converges to one version).
      CREATE TABLE host_status (
        host_id       text PRIMARY KEY,
        role          text NOT NULL,
        model_version text NOT NULL,
        updated_at    timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 4,
    name: 'nearest neighbours by inverted file (db/ivf.ts) instead of the sketch R-tree',
    sql: `
      -- The GiST index on the 8-dim sketch cost a third of the write rate and gave 27% recall at
      -- 1M rows; the inverted file needs only a btree on the cell.
      DROP INDEX IF EXISTS attack_patterns_sketch;
      ALTER TABLE attack_patterns DROP COLUMN sketch;
      ALTER TABLE attack_patterns ADD COLUMN cell integer;
      CREATE INDEX attack_patterns_cell ON attack_patterns (cell);
      CREATE TABLE ivf_centroids (
        id          integer PRIMARY KEY CHECK (id = 1),  -- one set of centroids at a time
        dim         integer NOT NULL,
        coarse      real[] NOT NULL,
        fine        real[] NOT NULL,
        trained_on  bigint NOT NULL,
        trained_at  timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 5,
    name: 'pattern confidence from the agreement of later similar outcomes (db/corroborate.ts)',
    sql: `
      ALTER TABLE attack_patterns
        ADD COLUMN policy_confidence real,
        ADD COLUMN agreements integer NOT NULL DEFAULT 0,
        ADD COLUMN disagreements integer NOT NULL DEFAULT 0;
      UPDATE attack_patterns SET policy_confidence = confidence;  -- null later: confidence is the policy's
    `,
  },
  {
    version: 6,
    name: 'inverted-file generations and cell sizes: cells retrained as the store grows (db/ivf.ts)',
    sql: `
      -- Cell ids are generation × 8192 + index; the cells stored so far are generation 0.
      ALTER TABLE ivf_centroids ADD COLUMN generation integer NOT NULL DEFAULT 0;
      -- Rows per cell when last counted: a query reads cells until it has enough rows.
      ALTER TABLE ivf_centroids ADD COLUMN sizes integer[], ADD COLUMN counted_at timestamptz;
    `,
  },
  {
    version: 7,
    name: 'trajectories store each state once; the view trajectory_transitions gives next_state',
    sql: `
      -- A step's next state is the next step's state in its stage (its own at the stage's end).
      -- New rows leave next_state NULL; rows stored before keep theirs.
      ALTER TABLE trajectories ALTER COLUMN next_state DROP NOT NULL;
      CREATE VIEW trajectory_transitions AS
        SELECT episode_id, stage, step, state, action, reward,
               COALESCE(next_state,
                        lead(state) OVER (PARTITION BY episode_id, stage ORDER BY step),
                        state) AS next_state,
               done
          FROM trajectories;
    `,
  },
  {
    version: 8,
    name: 'episodes by end time, for pruning history (warden db prune)',
    sql: `CREATE INDEX episodes_ended_at ON episodes (ended_at);`,
  },
  {
    version: 9,
    name: 'episodes by artifact hash, for the episode history (warden episodes)',
    sql: `CREATE INDEX episodes_artifact_hash ON episodes (artifact_hash);`,
  },
  {
    version: 10,
    name: 'trajectories: one row per episode stage; the views trajectories and trajectory_transitions keep a row per step',
    sql: `
      -- One row per stage instead of one per step: PostgreSQL spent a heap tuple, an index entry
      -- and a WAL record on every decision. states holds the stage's states end to end (steps ×
      -- dim values), stored uncompressed (float data does not compress, and pglz costs CPU).
      CREATE TABLE trajectory_stages (
        episode_id text NOT NULL REFERENCES episodes (episode_id),
        stage      smallint NOT NULL CHECK (stage IN (1, 2)),
        dim        smallint NOT NULL CHECK (dim > 0),
        steps      integer[] NOT NULL,
        states     real[] NOT NULL,
        actions    smallint[] NOT NULL,
        rewards    real[] NOT NULL,
        dones      boolean[] NOT NULL,
        PRIMARY KEY (episode_id, stage),
        CHECK (cardinality(states) = cardinality(steps) * dim
               AND cardinality(actions) = cardinality(steps)
               AND cardinality(rewards) = cardinality(steps)
               AND cardinality(dones) = cardinality(steps))
      );
      ALTER TABLE trajectory_stages ALTER COLUMN states SET STORAGE EXTERNAL;

      -- The rows stored so far, a stage at a time (a next_state stored by the layout before
      -- migration 7 is the next step's state, which the view derives). A stage whose states
      -- differ in length fails the CHECK above, and with it the migration: nothing is dropped.
      -- States are joined by array_cat, a state at a time: unnesting them to aggregate value by
      -- value took four times as long (25 s against 6.3 s for the 8,935 episodes of a 60 s
      -- npm start).
      CREATE AGGREGATE pg_temp.warden_concat(real[]) (SFUNC = array_cat, STYPE = real[]);
      INSERT INTO trajectory_stages (episode_id, stage, dim, steps, states, actions, rewards, dones)
        SELECT t.episode_id, t.stage, max(cardinality(t.state)),
               array_agg(t.step ORDER BY t.step),
               pg_temp.warden_concat(t.state ORDER BY t.step),
               array_agg(t.action ORDER BY t.step),
               array_agg(t.reward ORDER BY t.step),
               array_agg(t.done ORDER BY t.step)
          FROM trajectories t
         GROUP BY t.episode_id, t.stage;
      DROP AGGREGATE pg_temp.warden_concat(real[]);
      DROP VIEW trajectory_transitions;
      DROP TABLE trajectories;

      -- The per-step shape readers used: a row per step, as before.
      CREATE VIEW trajectories AS
        SELECT t.episode_id, t.stage, t.steps[i] AS step,
               t.states[(i - 1) * t.dim + 1 : i * t.dim] AS state,
               t.actions[i] AS action, t.rewards[i] AS reward, t.dones[i] AS done
          FROM trajectory_stages t, generate_subscripts(t.steps, 1) AS i;
      -- A step's next state is the next step's state in its stage (its own at the stage's end).
      CREATE VIEW trajectory_transitions AS
        SELECT t.episode_id, t.stage, t.steps[i] AS step,
               t.states[(i - 1) * t.dim + 1 : i * t.dim] AS state,
               t.actions[i] AS action, t.rewards[i] AS reward,
               t.states[(least(i + 1, cardinality(t.steps)) - 1) * t.dim + 1
                        : least(i + 1, cardinality(t.steps)) * t.dim] AS next_state,
               t.dones[i] AS done
          FROM trajectory_stages t, generate_subscripts(t.steps, 1) AS i;
    `,
  },
  {
    version: 11,
    name: 'experiences: a run under a reused episode id is kept (unique per decision time too)',
    sql: `
      -- A sandbox that numbers its episodes from 1 again after a restart reuses ids: the second
      -- run's steps had the first run's (host, episode, stage, step) and were dropped as repeats.
      -- A journal replay repeats a row's decision time as well, so it is still stored once.
      ALTER TABLE experiences DROP CONSTRAINT experiences_host_id_episode_id_stage_step_key;
      ALTER TABLE experiences ADD CONSTRAINT experiences_run_step_key
        UNIQUE (host_id, episode_id, stage, step, decided_at);
    `,
  },
];

const LOCK_KEY = 0x5741_5244; // "WARD"

/**
 * Applies every migration not yet recorded (up to version `upTo`, every one by default); returns
 * the versions applied now.
 */
export async function migrate(
  client: pg.PoolClient | pg.Client,
  upTo = Number.POSITIVE_INFINITY,
  /** Told of each migration before it runs (one that moves stored rows takes a while). */
  onApply: (m: Migration) => void = () => undefined,
): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version) || m.version > upTo) continue;
      onApply(m);
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
