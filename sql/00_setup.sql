-- Rule: with finlive in shared_preload_libraries, CREATE EXTENSION finlive
-- installs every documented SQL object, each named finlive_*, in the schema
-- the extension is created in (here the first schema of search_path,
-- public); the extension is not relocatable.
--
-- This file runs first (files run in name order); every later file assumes
-- the extension exists and leaves nothing else behind.
CREATE EXTENSION finlive;

SELECT e.extname, e.extversion = a.default_version AS default_version,
       e.extrelocatable, e.extnamespace::regnamespace AS schema
  FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
 WHERE e.extname = 'finlive';

-- The documented functions, with their exact signatures and results.
\pset format wrapped
\pset columns 100
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND p.proname IN ('finlive_mark', 'finlive_clear', 'finlive_clear_all',
                     'finlive_is_active', 'finlive_fence', 'finlive_owners',
                     'finlive_snapshot', 'finlive_register',
                     'finlive_unregister', 'finlive_reap_once',
                     'finlive_stats', 'finlive_stats_reset',
                     'finlive_explain')
 ORDER BY 1;
\pset format aligned

-- The documented views and the reap log.
SELECT c.relname, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace
   AND c.relname IN ('finlive_owners', 'finlive_targets', 'finlive_stats',
                     'finlive_reap_log', 'finlive_reap_errors')
 ORDER BY 1;
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'finlive_reap_log'::regclass AND attnum > 0
   AND NOT attisdropped
 ORDER BY attnum;
-- [1.2] One row per job whose reap keeps failing.
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'finlive_reap_errors'::regclass AND attnum > 0
   AND NOT attisdropped
 ORDER BY attnum;
-- [1.2]/[1.3] finlive_targets shows the captured search_path, every policy
-- argument as registered, and the effective value the reaper uses now.
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'finlive_targets'::regclass AND attnum > 0
   AND NOT attisdropped
 ORDER BY attnum;

-- Every member of the extension is named finlive_* and lives in public.
SELECT count(*) AS misnamed_members
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'finlive'
   AND d.deptype = 'e'
   AND regexp_replace((pg_identify_object(d.classid, d.objid, d.objsubid)).identity,
                      '^public\.', '') NOT LIKE 'finlive\_%';
SELECT DISTINCT o.schema
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid,
       LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
 WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'finlive'
   AND d.deptype = 'e' AND o.schema IS NOT NULL;

-- Not relocatable.
CREATE SCHEMA elsewhere;
ALTER EXTENSION finlive SET SCHEMA elsewhere;
\echo SQLSTATE: :SQLSTATE
DROP SCHEMA elsewhere;

-- The reaper tests need jobs owned by another session: finlive_reap_once()
-- refuses to run in a session that owns jobs (a hook could release them).
-- owner_mark() and friends run finlive_mark() and friends in a second
-- session of this test file's own, through dblink; it ends with the file.
CREATE EXTENSION dblink;
CREATE FUNCTION owner_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ('owner' = ANY (COALESCE(public.dblink_get_connections(), '{}'))) THEN
        PERFORM public.dblink_connect('owner',
            format('dbname=%s host=%s port=%s application_name=owner',
                   current_database(),
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port')));
    END IF;
    RETURN (SELECT r FROM public.dblink('owner', q) AS t(r text));
END
$$;
-- Everything is named schema-qualified, so the files that set their own
-- search_path can use them too.
CREATE FUNCTION owner_mark(job bigint, run bigint DEFAULT NULL, stage text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    SELECT public.owner_sql(format('SELECT public.finlive_mark(%L::bigint, %L::bigint, %L::text)::text',
                                   job, run, stage))::bigint
$$;
CREATE FUNCTION owner_clear(job bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT public.owner_sql(format('SELECT public.finlive_clear(%L::bigint)::text', job))::boolean
$$;
CREATE FUNCTION owner_clear_all() RETURNS integer LANGUAGE sql AS $$
    SELECT public.owner_sql('SELECT public.finlive_clear_all()::text')::integer
$$;
CREATE FUNCTION owner_pid() RETURNS integer LANGUAGE sql AS $$
    SELECT public.owner_sql('SELECT pg_backend_pid()::text')::integer
$$;

-- The second session works: it owns a job that this session sees owned by
-- another pid, and releases it again.
SELECT owner_mark(1, 1, 'setup') > 0 AS owner_marks;
SELECT job_id, run_id, stage, pid = owner_pid() AS by_owner,
       pid <> pg_backend_pid() AS not_me
  FROM finlive_owners;
SELECT owner_clear(1) AS owner_clears, owner_clear_all() AS left_over,
       finlive_is_active(1) AS still_active;

-- The application's tables for the reaper tests, as the original
-- orchestrator has them.  app_tables() makes, in the first schema of
-- search_path (each file makes a schema of its own first), tasks, runs and
-- one jobs table per name given, each with the index finlive_register
-- recommends for the reaper's candidate query, and add_job(), which inserts
-- a running job started started_ago ago with its task (in stage) and its run
-- (ended finished_ago ago with exit_code; both NULL while the run is still
-- going):
--   one jobs table:   add_job(id, stage, exit_code, finished_ago
--                             [, started_ago [, attempts [, max_attempts]]])
--   jobs_a, jobs_b:   add_job(target, id, stage, exit_code, finished_ago
--                             [, started_ago]), target 'a' or 'b'
CREATE PROCEDURE app_tables(VARIADIC jobs text[] DEFAULT '{jobs}')
LANGUAGE plpgsql AS $fixture$
DECLARE
    s text := pg_catalog.quote_ident(pg_catalog.current_schema());
    t text;
BEGIN
    EXECUTE format('CREATE TABLE %s.tasks (id bigint PRIMARY KEY, stage text NOT NULL)', s);
    EXECUTE format('CREATE TABLE %s.runs (id bigint PRIMARY KEY, finished_at timestamptz,'
                   ' exit_code integer)', s);
    FOREACH t IN ARRAY jobs LOOP
        EXECUTE format('CREATE TABLE %s.%I (id bigint PRIMARY KEY, status text NOT NULL,'
                       ' run_id bigint, task_id bigint, attempts integer NOT NULL,'
                       ' max_attempts integer NOT NULL, started_at timestamptz NOT NULL)', s, t);
        EXECUTE format('CREATE INDEX ON %s.%I (id) WHERE status = ''running''', s, t);
    END LOOP;
    IF cardinality(jobs) = 1 THEN
        EXECUTE format($f$
            CREATE PROCEDURE %1$s.add_job(id bigint, stage text, exit_code integer,
                                          finished_ago interval,
                                          started_ago interval DEFAULT '20 minutes',
                                          attempts integer DEFAULT 0,
                                          max_attempts integer DEFAULT 2)
            LANGUAGE sql AS $$
                INSERT INTO %1$s.tasks VALUES (id, stage);
                INSERT INTO %1$s.runs VALUES (id, now() - finished_ago, exit_code);
                INSERT INTO %1$s.%2$I VALUES (id, 'running', id, id, attempts, max_attempts,
                                              now() - started_ago);
            $$ $f$, s, jobs[1]);
    ELSE
        EXECUTE format($f$
            CREATE PROCEDURE %1$s.add_job(target text, id bigint, stage text, exit_code integer,
                                          finished_ago interval,
                                          started_ago interval DEFAULT '20 minutes')
            LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO %1$s.tasks VALUES (id, stage);
                INSERT INTO %1$s.runs VALUES (id, now() - finished_ago, exit_code);
                EXECUTE format('INSERT INTO %1$s.%%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - $2)',
                               'jobs_' || target) USING id, started_ago;
            END
            $$ $f$, s);
    END IF;
END
$fixture$;
-- Every setting the reaper reads, at the value each test file assumes.
CREATE PROCEDURE pin_reaper_settings() LANGUAGE sql AS $$
    SELECT set_config('finlive.enabled', 'on', false);
    SELECT set_config('finlive.dry_run', 'off', false);
    SELECT set_config('finlive.finalize_grace', '300', false);
    SELECT set_config('finlive.max_running', '5400', false);
    SELECT set_config('finlive.claim_grace', '30', false);
    SELECT set_config('finlive.guarded_stages', 'deploy-staging', false);
    SELECT set_config('finlive.restart_grace', '0', false);
$$;

-- Both make what they say, where they say, and add_job() fills them.
CREATE SCHEMA fixture_one;
SET search_path = fixture_one, public;
CALL app_tables();
CALL add_job(1, 'testing', 0, '10 minutes');
CALL add_job(2, 'build', NULL, NULL, '1 hour', 1, 3);
SELECT id, status, run_id, task_id, attempts, max_attempts,
       round(extract(epoch FROM now() - started_at) / 60) AS minutes_ago
  FROM jobs ORDER BY id;
SELECT * FROM tasks ORDER BY id;
SELECT id, round(extract(epoch FROM now() - finished_at) / 60) AS minutes_ago, exit_code
  FROM runs ORDER BY id;
SELECT indexrelid::regclass AS index, pg_get_expr(indpred, indrelid) AS predicate
  FROM pg_index WHERE indrelid = 'jobs'::regclass AND NOT indisprimary;
CREATE SCHEMA fixture_two;
SET search_path = fixture_two, public;
CALL app_tables('jobs_a', 'jobs_b');
CALL add_job('b', 7, 'testing', 1, '5 minutes');
SELECT 'a' AS target, id, status, attempts, max_attempts FROM jobs_a
UNION ALL SELECT 'b', id, status, attempts, max_attempts FROM jobs_b;
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'fixture_two'::regnamespace ORDER BY 1;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA fixture_one, fixture_two CASCADE;
RESET client_min_messages;
SET finlive.enabled = off;
SET finlive.claim_grace = 1;
SET finlive.guarded_stages = '*';
CALL pin_reaper_settings();
SELECT name, setting FROM pg_settings
 WHERE name IN ('finlive.enabled', 'finlive.dry_run', 'finlive.finalize_grace',
                'finlive.max_running', 'finlive.claim_grace',
                'finlive.guarded_stages', 'finlive.restart_grace')
 ORDER BY 1;
