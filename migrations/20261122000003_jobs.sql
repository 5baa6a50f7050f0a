-- Analysis jobs: the job store every alyxd instance schedules from. A job splits into one task
-- per data chunk; a finished task keeps its partial result (the checkpoint), so after any failure
-- only unfinished tasks run again. Tasks are claimed with FOR UPDATE SKIP LOCKED and held under
-- a lease that the running instance renews; an expired lease puts the task back in the queue.

CREATE TABLE jobs (
    id                  bigserial PRIMARY KEY,
    owner               text NOT NULL,
    name                text NOT NULL DEFAULT '',
    dataset             text NOT NULL,
    analysis            jsonb NOT NULL,          -- alyx_shared::jobs::Analysis
    target              text NOT NULL CHECK (target IN ('auto', 'local', 'spark', 'slurm')),
    priority            integer NOT NULL DEFAULT 0,
    cores               integer NOT NULL CHECK (cores > 0),
    memory_mb           integer NOT NULL CHECK (memory_mb > 0),
    state               text NOT NULL CHECK (state IN
                          ('queued', 'running', 'preempted', 'succeeded', 'failed', 'cancelled')),
    reason              text NOT NULL DEFAULT '',   -- why it failed, was cancelled or waits
    tasks_total         integer NOT NULL,
    events_total        bigint NOT NULL,
    bytes_total         bigint NOT NULL,
    complexity          integer NOT NULL,       -- the query's size (run-time model feature)
    histograms          integer NOT NULL,       -- histograms per task (run-time model feature)
    estimated_seconds   double precision,        -- at submission, then as tasks finish
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz
);
CREATE INDEX jobs_state ON jobs (state, priority DESC, id);
CREATE INDEX jobs_target ON jobs (target, state);
CREATE INDEX jobs_owner ON jobs (owner, id DESC);

-- Every state change, with who or what caused it.
CREATE TABLE job_transitions (
    job_id      bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_state  text,
    to_state    text NOT NULL,
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX job_transitions_job ON job_transitions (job_id, at);

CREATE TABLE job_tasks (
    job_id          bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    chunk_id        integer NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'running', 'done', 'failed')),
    events          bigint NOT NULL,
    bytes           bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    not_before      timestamptz,               -- retry backoff
    executor        text,                      -- where it ran or runs: local, spark, slurm
    worker          text,                      -- the instance (and batch job) running it
    lease_until     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    seconds         double precision,          -- run time of the successful attempt
    result          jsonb,                     -- alyx_shared::jobs::TaskResult: the checkpoint
    error           text,
    PRIMARY KEY (job_id, chunk_id)
);
-- Small partial indexes: claims read pending tasks, lease renewal and expiry running ones.
CREATE INDEX job_tasks_pending ON job_tasks (job_id, chunk_id) WHERE state = 'pending';
CREATE INDEX job_tasks_running ON job_tasks (lease_until) WHERE state = 'running';

-- Finished tasks' features and run times: the history the run-time model learns from. Kept
-- when jobs are deleted.
CREATE TABLE task_history (
    id          bigserial PRIMARY KEY,
    executor    text NOT NULL,
    events      bigint NOT NULL,
    bytes       bigint NOT NULL,
    complexity  integer NOT NULL,
    histograms  integer NOT NULL,
    cores       integer NOT NULL,
    seconds     double precision NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

-- Job state changes for watchers on every instance: payload "job_id".
CREATE FUNCTION alyx_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alyx_jobs', NEW.job_id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER job_transitions_notify AFTER INSERT ON job_transitions
    FOR EACH ROW EXECUTE FUNCTION alyx_notify_job();
CREATE TRIGGER job_tasks_notify AFTER UPDATE OF state ON job_tasks
    FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done')
    EXECUTE FUNCTION alyx_notify_job();
