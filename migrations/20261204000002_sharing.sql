-- Sharing jobs, and who wrote each notebook change as alyxd saw it.

-- A job's owner may share it with named users: they see the job, its progress and results
-- (they may not cancel it, change its priority or share it on).
CREATE TABLE job_readers (
    job_id      bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_name   text NOT NULL,
    PRIMARY KEY (job_id, user_name)
);
CREATE INDEX job_readers_user ON job_readers (user_name);

-- The authenticated user whose session sent each notebook change, by the change's hash. A
-- change's own message names an author too, but the client wrote that; this is what alyxd
-- attests. Kept when compaction folds the change into the snapshot.
CREATE TABLE notebook_authors (
    notebook_id bigint NOT NULL REFERENCES notebooks (id) ON DELETE CASCADE,
    hash        text NOT NULL,
    author      text NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (notebook_id, hash)
);
INSERT INTO notebook_authors (notebook_id, hash, author, stored_at)
    SELECT notebook_id, hash, author, stored_at FROM notebook_changes
    ON CONFLICT DO NOTHING;
