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
