-- Event ids and chunk ids are reserved here, per dataset, so that several ingest workers (and
-- instances) can encode Parquet chunks at the same time and only list them under the dataset's
-- lock. alyxd raises these to the manifest's values at start-up.
ALTER TABLE datasets
    ADD COLUMN next_event_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN next_chunk_id integer NOT NULL DEFAULT 1;
