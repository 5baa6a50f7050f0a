-- Trust: tokens that expire, and the role users' catalogue queries run as.

-- A token with an expiry stops working then (NULL: never expires; revoke it to end it).
ALTER TABLE tokens ADD COLUMN expires_at timestamptz;

-- `alyx_query` reads the catalogue's events and nothing else: not users, tokens, notebooks or
-- jobs. alyxd's query pool runs users' PostgreSQL-engine queries as it (`query_role`). Roles
-- belong to the whole cluster, so it is created once; an owner that may not create roles
-- leaves that to an operator (`CREATE ROLE alyx_query NOLOGIN; GRANT alyx_query TO <owner>;`
-- then this grant).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alyx_query') THEN
        CREATE ROLE alyx_query NOLOGIN;
    END IF;
EXCEPTION
    -- Another database's migration made it at the same moment.
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot create role alyx_query (%); an operator must, see migrations/README.md', SQLERRM;
END
$$;

DO $$
BEGIN
    -- The owner must be able to SET ROLE to it (a superuser always can).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT alyx_query TO %I', current_user);
    END IF;
    GRANT SELECT ON events TO alyx_query;
EXCEPTION WHEN insufficient_privilege OR undefined_object THEN
    RAISE WARNING 'cannot grant role alyx_query (%); an operator must, see migrations/README.md', SQLERRM;
END
$$;
