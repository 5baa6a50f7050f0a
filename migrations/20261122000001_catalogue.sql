-- alyxd's catalogue: datasets and their Parquet chunks, runs, one row per stored event
-- (partitioned by event time), Kafka ingest offsets and dead letters, users and tokens.

CREATE TABLE datasets (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    source      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per chunk of a dataset's store (the manifest lists the same chunk). A chunk that the
-- manifest lists but this table does not was written and never committed: alyxd removes it
-- before it ingests the chunk's partition again.
CREATE TABLE chunks (
    dataset_id      integer NOT NULL REFERENCES datasets (id),
    chunk_id        integer NOT NULL,
    first_event_id  bigint NOT NULL,
    event_count     integer NOT NULL,
    run_min         integer NOT NULL,
    run_max         integer NOT NULL,
    time_min        timestamptz NOT NULL,
    time_max        timestamptz NOT NULL,
    bytes           bigint NOT NULL,
    files           jsonb NOT NULL,          -- table -> {path, sha256, bytes, rows}
    origin          text,                    -- kafka:<topic>/<partition>@<first>-<last offset>
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, chunk_id)
);

CREATE TABLE runs (
    run             integer PRIMARY KEY,
    system          text NOT NULL,
    sqrt_s_gev      double precision NOT NULL,
    first_time      timestamptz NOT NULL,
    last_time       timestamptz NOT NULL,
    event_count     bigint NOT NULL
);

-- The event catalogue. An event's identity is (run, event_number); the partition key has to be
-- part of every unique constraint, and an event's time never changes, so the key below makes a
-- replayed or re-sent event a conflict that ingest skips.
CREATE TABLE events (
    event_time      timestamptz NOT NULL,
    run             integer NOT NULL,
    event_number    bigint NOT NULL,
    time_ns         bigint NOT NULL,
    dataset_id      integer NOT NULL,
    event_id        bigint NOT NULL,
    chunk_id        integer NOT NULL,
    system          text NOT NULL,
    sqrt_s_gev      double precision NOT NULL,
    vertex_x_cm     double precision NOT NULL,
    vertex_y_cm     double precision NOT NULL,
    vertex_z_cm     double precision NOT NULL,
    n_tracks        integer NOT NULL,
    n_hits          integer NOT NULL,
    n_muons         integer NOT NULL,
    n_electrons     integer NOT NULL,
    n_jets          integer NOT NULL,
    trigger_bits    bigint NOT NULL,
    flags           text NOT NULL,
    produced_at     timestamptz,             -- the Kafka message's timestamp
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (event_time, run, event_number)
) PARTITION BY RANGE (event_time);

CREATE INDEX events_time_brin ON events USING brin (event_time);
CREATE INDEX events_run_event ON events (run, event_number);
CREATE INDEX events_dataset_id ON events (dataset_id, event_id);

-- Events outside every daily partition (a clock far off, imported files with no time).
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Creates the daily partitions events_YYYYMMDD for [from_day, to_day] that do not exist yet;
-- returns how many it created. Serialised by an advisory lock: instances race for the same day.
CREATE FUNCTION alyx_ensure_event_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date := from_day;
    created integer := 0;
    part text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('alyx_event_partitions'));
    WHILE day <= to_day LOOP
        part := 'events_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                part,
                (day::timestamp AT TIME ZONE 'UTC'),
                ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

-- Kafka offsets, committed in the same transaction as the catalogue rows they produced.
CREATE TABLE ingest_offsets (
    topic           text NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint NOT NULL,
    owner           text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Running alyxd instances; a partition's fair share depends on how many are alive.
CREATE TABLE ingest_instances (
    id              text PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now()
);

-- Messages that could not be stored, with the reason and the raw bytes; never dropped.
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    partition       integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason          text NOT NULL,
    payload         bytea NOT NULL,
    UNIQUE (topic, partition, kafka_offset)
);

CREATE TABLE users (
    id              serial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    role            text NOT NULL CHECK (role IN ('physicist', 'shift', 'operator')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens, stored as SHA-256 of the token (tokens are 256 random bits).
CREATE TABLE tokens (
    id              serial PRIMARY KEY,
    user_id         integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_sha256    text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
