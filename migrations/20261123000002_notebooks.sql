-- Notebooks: Automerge documents. A notebook is its compacted snapshot (Automerge's saved
-- format, history included) plus the changes stored since, each once (by hash); loading applies
-- the changes to the snapshot. Compaction writes a new snapshot and deletes only the changes it
-- holds, so a change stored concurrently by another instance is never lost.
CREATE TABLE notebooks (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL,
    title       text NOT NULL,
    snapshot    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notebooks_owner ON notebooks (owner);

CREATE TABLE notebook_changes (
    notebook_id bigint NOT NULL REFERENCES notebooks (id) ON DELETE CASCADE,
    seq         bigserial,
    hash        text NOT NULL,
    change      bytea NOT NULL,
    author      text NOT NULL,             -- the user whose session sent it
    stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (notebook_id, seq),
    UNIQUE (notebook_id, hash)
);

-- Who else may open a notebook (the owner always may).
CREATE TABLE notebook_access (
    notebook_id bigint NOT NULL REFERENCES notebooks (id) ON DELETE CASCADE,
    user_name   text NOT NULL,
    access      text NOT NULL CHECK (access IN ('read', 'write')),
    PRIMARY KEY (notebook_id, user_name)
);
CREATE INDEX notebook_access_user ON notebook_access (user_name);
