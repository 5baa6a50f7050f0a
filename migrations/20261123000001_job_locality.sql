-- Data locality: where each chunk of a dataset has a replica (a site: a storage element that
-- an executor reads locally). A task of a job with target `auto` prefers an executor at one of
-- its chunk's sites; a chunk with no replica recorded is read from alyxd's data directory by
-- any executor.
CREATE TABLE chunk_replicas (
    dataset     text NOT NULL,
    chunk_id    integer NOT NULL,
    site        text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, chunk_id, site)
);

-- The sites of a task's chunk when the job was submitted; NULL: no replica recorded.
ALTER TABLE job_tasks ADD COLUMN sites text[];

-- Watchers and schedulers on every instance follow every task state change (claims, requeues,
-- completions) and priority changes, not only completions: payload "job_id". Notifications
-- with the same payload in one transaction are sent once.
DROP TRIGGER job_tasks_notify ON job_tasks;
CREATE TRIGGER job_tasks_notify AFTER UPDATE OF state ON job_tasks
    FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION alyx_notify_job();

CREATE FUNCTION alyx_notify_job_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alyx_jobs', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_priority_notify AFTER UPDATE OF priority ON jobs
    FOR EACH ROW WHEN (NEW.priority IS DISTINCT FROM OLD.priority)
    EXECUTE FUNCTION alyx_notify_job_row();
