-- Analyst access that cannot hurt (issue 14). enms_analyst (0008) is read-only by default, but a
-- session may switch default_transaction_read_only off, so read-only must come from privileges:
-- here it gets none that write, create, lock or fill disk, and limits on what its queries cost.
-- docs/marts.md ("Analyst access") says what holds regardless and what the role can override.
--
-- Roles are cluster-wide: this file runs once per database of the cluster (and test suites run
-- it in several databases at once). Everything per database (privileges on this database and
-- its pg_catalog functions) is plain GRANT/REVOKE; the role-wide settings are only written when
-- they differ, and retried when another database's migration updated the role at the same time.

-- 1. This database: no CONNECT or TEMP for every role of the cluster (PUBLIC), only for the
--    platform (the role running this migration and the database owner) and enms_analyst, which
--    connects but creates nothing, not even temporary tables.
DO $$
DECLARE
    db    text := current_database();
    owner text := (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = db);
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', db);
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I, %I', db, current_user, owner);
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM enms_analyst', db);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO enms_analyst', db);
END
$$;

-- 2. No schema it may create in (0008 revoked CREATE on public from PUBLIC; again, in case a
--    database was made from a template that grants it).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public, raw, core, marts FROM enms_analyst;

-- 3. Functions every role may call that lock or write, in this database's catalog: the advisory
--    locks (whoever holds the migration lock stops `enms db migrate` and `enms ingest`) and the
--    large-object constructors (pg_largeobject fills the disk like a table). Revoking EXECUTE
--    on pg_catalog functions needs a superuser; a non-superuser migration warns instead, and
--    `enms db analyst-password` reports the gap.
DO $$
DECLARE
    platform text[] := ARRAY[
        current_user,
        (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database())
    ];
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure
        FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND (p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
               OR p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea'))
    LOOP
        BEGIN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I, %I', fn, platform[1], platform[2]);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'enms_analyst can still call %: revoking it needs a superuser '
                '(REVOKE EXECUTE ON FUNCTION % FROM PUBLIC, then GRANT it to the platform role)',
                fn, fn;
        END;
    END LOOP;
END
$$;

-- 4. Limits of every analyst session, role-wide. `enms db analyst-password` sets them again from
--    ENMS_ANALYST_* (defaults documented in enms_dagster/settings.py, the same as here); a value
--    already on the role stays. temp_file_limit is superuser-only, so the role cannot raise it;
--    statement_timeout and idle_in_transaction_session_timeout are defaults a session may change.
DO $$
DECLARE
    wanted text[] := ARRAY[
        'statement_timeout=60s',
        'idle_in_transaction_session_timeout=5min',
        'temp_file_limit=1GB'
    ];
    setting text;
    attempt int;
BEGIN
    FOREACH setting IN ARRAY wanted LOOP
        FOR attempt IN 1..20 LOOP
            BEGIN
                IF NOT EXISTS (
                    SELECT 1
                    FROM pg_db_role_setting s, unnest(s.setconfig) AS c
                    WHERE s.setrole = 'enms_analyst'::regrole AND s.setdatabase = 0
                      AND split_part(c, '=', 1) = split_part(setting, '=', 1)
                ) THEN
                    EXECUTE format('ALTER ROLE enms_analyst SET %I = %L',
                                   split_part(setting, '=', 1), split_part(setting, '=', 2));
                END IF;
                EXIT;
            EXCEPTION
                WHEN insufficient_privilege THEN
                    RAISE WARNING 'enms_analyst: % not set (%); run `enms db analyst-password` '
                        'as a superuser', setting, SQLERRM;
                    EXIT;
                WHEN internal_error THEN  -- "tuple concurrently updated": another database's run
                    PERFORM pg_sleep(0.05 + random() * 0.2);
            END;
        END LOOP;
    END LOOP;
    FOR attempt IN 1..20 LOOP
        BEGIN
            IF (SELECT rolconnlimit FROM pg_roles WHERE rolname = 'enms_analyst') = -1 THEN
                ALTER ROLE enms_analyst CONNECTION LIMIT 10;
            END IF;
            EXIT;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE WARNING 'enms_analyst: no connection limit set (%)', SQLERRM;
                EXIT;
            WHEN internal_error THEN
                PERFORM pg_sleep(0.05 + random() * 0.2);
        END;
    END LOOP;
END
$$;
