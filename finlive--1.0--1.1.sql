/* finlive--1.0--1.1.sql: diagnostics for operators */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION finlive UPDATE TO '1.1'" to load this file. \quit

-- 1.1 adds only new objects; nothing of 1.0 changes shape, so live owners
-- (session locks and the shared registry) and registrations (finlive_target)
-- are untouched by the update.
--
--   finlive_target_problems()   targets the reaper skips, and why
--   finlive_running_jobs()      each target's running jobs with their owner
--   finlive_running_jobs        and the owner's pg_stat_activity row (view)
--   finlive_audit()             what an operator should look at, one reason
--                               per row
--
-- The running-jobs function and the audit run with the caller's privileges:
-- they read the application's tables, so they show only the targets whose
-- tables the caller may SELECT (the audit names the others), and the owner's
-- state and query only where pg_stat_activity shows them to the caller (grant
-- pg_read_all_stats, or pg_monitor, to the monitoring role).  Every function
-- pins search_path, and every table and function they build queries for is
-- named schema-qualified (regclass text under search_path = pg_catalog).

------------------------------------------------------------------------------
-- Targets the reaper would skip
------------------------------------------------------------------------------

-- SECURITY DEFINER because the hook names are kept as text in finlive_target,
-- which PUBLIC cannot read (finlive_targets shows a vanished hook as NULL, the
-- same as no hook).  It returns only what finlive_targets already shows.
CREATE FUNCTION finlive_target_problems(OUT target regclass, OUT problem text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- raises 55000 when finlive was not preloaded, like every finlive function
    SELECT @extschema@.finlive_is_active(NULL);
    SELECT t.jobs,
           CASE
             WHEN c_jobs.oid IS NULL THEN 'its jobs table no longer exists'
             WHEN c_runs.oid IS NULL THEN 'its runs table no longer exists'
             WHEN t.tasks IS NOT NULL AND c_tasks.oid IS NULL
               THEN 'its tasks table no longer exists'
             WHEN t.on_reap IS NOT NULL AND pg_catalog.to_regprocedure(t.on_reap) IS NULL
               THEN pg_catalog.format('its on_reap function %s no longer exists', t.on_reap)
             WHEN t.gate IS NOT NULL AND pg_catalog.to_regprocedure(t.gate) IS NULL
               THEN pg_catalog.format('its gate function %s no longer exists', t.gate)
             WHEN r.oid IS NULL
               THEN 'the role that registered it no longer exists'
           END
      FROM @extschema@.finlive_target t
      LEFT JOIN pg_catalog.pg_class c_jobs ON c_jobs.oid = t.jobs
      LEFT JOIN pg_catalog.pg_class c_runs ON c_runs.oid = t.runs
      LEFT JOIN pg_catalog.pg_class c_tasks ON c_tasks.oid = t.tasks
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = t.registered_by
     WHERE (c_jobs.oid IS NULL OR c_runs.oid IS NULL
        OR (t.tasks IS NOT NULL AND c_tasks.oid IS NULL)
        OR (t.on_reap IS NOT NULL AND pg_catalog.to_regprocedure(t.on_reap) IS NULL)
        OR (t.gate IS NOT NULL AND pg_catalog.to_regprocedure(t.gate) IS NULL)
        OR r.oid IS NULL)
     ORDER BY t.jobs::pg_catalog.oid
$$;

------------------------------------------------------------------------------
-- Running jobs, their owners, and what the owners are doing
------------------------------------------------------------------------------

CREATE FUNCTION finlive_running_jobs(
    OUT target regclass,
    OUT job_id bigint,
    OUT stage text,
    OUT started_at timestamptz,
    OUT running_for interval,
    OUT exit_code integer,
    OUT finished_at timestamptz,
    OUT finished_for interval,
    OUT guarded boolean,
    OUT owner_pid integer,
    OUT owner_backend_start timestamptz,
    OUT token bigint,
    OUT owned_since timestamptz,
    OUT owner_stage text,
    OUT state text,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT xact_start timestamptz,
    OUT query_start timestamptz,
    OUT state_change timestamptz,
    OUT application_name text,
    OUT client_addr inet,
    OUT query text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    enabled boolean;
    stages text[];
    guard_all boolean;
BEGIN
    -- raises 55000 without the preload, like every finlive function
    PERFORM @extschema@.finlive_is_active(NULL);
    enabled := pg_catalog.current_setting('finlive.enabled')::boolean;
    -- finlive.guarded_stages as the reaper reads it: a comma list, blanks
    -- around names ignored, a name may be double-quoted, "*" guards all.
    SELECT COALESCE(pg_catalog.array_agg(s) FILTER (WHERE s <> ''), '{}'),
           COALESCE(pg_catalog.bool_or(s = '*'), false)
      INTO stages, guard_all
      FROM (SELECT pg_catalog.btrim(pg_catalog.btrim(x), '"') AS s
              FROM pg_catalog.unnest(pg_catalog.string_to_array(
                       pg_catalog.current_setting('finlive.guarded_stages'), ',')) AS x) l;

    FOR t IN
        SELECT f.jobs, f.runs, f.tasks
          FROM @extschema@.finlive_targets f
          JOIN pg_catalog.pg_class cj ON cj.oid = f.jobs
          JOIN pg_catalog.pg_class cr ON cr.oid = f.runs
          LEFT JOIN pg_catalog.pg_class ct ON ct.oid = f.tasks
         WHERE (f.tasks IS NULL OR ct.oid IS NOT NULL)
           AND pg_catalog.has_table_privilege(f.jobs, 'SELECT')
           AND pg_catalog.has_table_privilege(f.runs, 'SELECT')
           AND (f.tasks IS NULL OR pg_catalog.has_table_privilege(f.tasks, 'SELECT'))
         ORDER BY f.jobs::pg_catalog.text
    LOOP
      -- A target whose tables were altered since registration (a column
      -- dropped, renamed or retyped) is skipped with a WARNING, so the
      -- diagnostics of the other targets still work when one breaks.
      BEGIN
        RETURN QUERY EXECUTE pg_catalog.format($q$
            SELECT %1$L::pg_catalog.regclass,
                   j.id::pg_catalog.int8,
                   %4$s,
                   j.started_at::pg_catalog.timestamptz,
                   pg_catalog.now() - j.started_at::pg_catalog.timestamptz,
                   r.exit_code::pg_catalog.int4,
                   r.finished_at::pg_catalog.timestamptz,
                   pg_catalog.now() - r.finished_at::pg_catalog.timestamptz,
                   $1 AND o.job_id IS NOT NULL
                      AND ($3 OR COALESCE(
                              (%4$s) OPERATOR(pg_catalog.=) ANY ($2), false)),
                   o.pid, o.backend_start, o.token, o.since, o.stage,
                   a.state, a.wait_event_type, a.wait_event, a.xact_start,
                   a.query_start, a.state_change, a.application_name,
                   a.client_addr, a.query
              FROM %1$s j
              LEFT JOIN %2$s r ON r.id OPERATOR(pg_catalog.=) j.run_id
              %3$s
              LEFT JOIN @extschema@.finlive_owners() o
                     ON o.job_id OPERATOR(pg_catalog.=) j.id
              LEFT JOIN pg_catalog.pg_stat_activity a
                     ON a.pid OPERATOR(pg_catalog.=) o.pid
                    AND a.backend_start OPERATOR(pg_catalog.=) o.backend_start
             WHERE j.status OPERATOR(pg_catalog.=) 'running'
             ORDER BY j.id $q$,
            t.jobs::pg_catalog.text,
            t.runs::pg_catalog.text,
            CASE WHEN t.tasks IS NULL THEN ''
                 ELSE pg_catalog.format(
                     'LEFT JOIN %s tk ON tk.id OPERATOR(pg_catalog.=) j.task_id',
                     t.tasks::pg_catalog.text) END,
            CASE WHEN t.tasks IS NULL THEN 'NULL::pg_catalog.text'
                 ELSE 'tk.stage::pg_catalog.text' END)
        USING enabled, stages, guard_all;
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'finlive: cannot read target %: %', t.jobs, SQLERRM;
      END;
    END LOOP;
END;
$$;

CREATE VIEW finlive_running_jobs AS
    SELECT * FROM finlive_running_jobs();

------------------------------------------------------------------------------
-- The audit
------------------------------------------------------------------------------

-- One row per finding, ordered by reason, target, job:
--   leaked_ownership   a live session owns a job that is running in no target
--                      (the application forgot finlive_clear)
--   stuck_finalizer    a running job in a guarded stage, past finalize_grace,
--                      whose owner session has been idle (or idle in
--                      transaction) for longer than finalize_grace: the reaper
--                      keeps deferring it to a finalizer that does nothing
--   missing_index      no index of the jobs table serves status = 'running'
--                      (or runs.id / tasks.id has no index): each tick scans
--   broken_target      the reaper skips the target (table, hook or role gone)
--   unreadable_target  the caller may not read the target's tables, so the
--                      audit could not check it (nor claim leaked ownership)
CREATE FUNCTION finlive_audit(
    OUT reason text,
    OUT target regclass,
    OUT job_id bigint,
    OUT pid integer,
    OUT detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
WITH grace AS (
    -- finlive_is_active() raises 55000 without the preload, like every
    -- finlive function; otherwise it is false and the CASE takes the setting
    SELECT CASE WHEN @extschema@.finlive_is_active(NULL) THEN NULL
                ELSE pg_catalog.current_setting('finlive.finalize_grace')::pg_catalog.interval
           END AS g
), targets AS (
    SELECT f.jobs, f.runs, f.tasks FROM @extschema@.finlive_targets f
), unreadable AS (
    SELECT t.jobs,
           ARRAY(SELECT x::pg_catalog.text
                   FROM pg_catalog.unnest(ARRAY[t.jobs, t.runs, t.tasks]) x
                  WHERE x IS NOT NULL
                    AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = x)
                    AND NOT pg_catalog.has_table_privilege(x, 'SELECT')) AS tables
      FROM targets t
), running AS MATERIALIZED (
    SELECT * FROM @extschema@.finlive_running_jobs()
), findings AS (
    -- Targets the audit cannot see into.
    SELECT 'unreadable_target' AS reason, u.jobs AS target, NULL::bigint AS job_id,
           NULL::integer AS pid,
           'the current role may not SELECT from '
           || pg_catalog.array_to_string(u.tables, ', ') AS detail
      FROM unreadable u
     WHERE pg_catalog.cardinality(u.tables) > 0
    UNION ALL
    -- Ownership with no running job behind it.  Claimed only when there is a
    -- target and every target could be read (otherwise the job may be
    -- running in a table the caller cannot see).
    SELECT 'leaked_ownership', NULL, o.job_id, o.pid,
           pg_catalog.format('owned since %s (run %s, stage %s) but running in no target',
                             o.since,
                             COALESCE(o.run_id::pg_catalog.text, '-'),
                             COALESCE(o.stage, '-'))
      FROM @extschema@.finlive_owners() o
     WHERE EXISTS (SELECT 1 FROM targets)
       AND NOT EXISTS (SELECT 1 FROM unreadable u WHERE pg_catalog.cardinality(u.tables) > 0)
       AND NOT EXISTS (SELECT 1 FROM running r WHERE r.job_id OPERATOR(pg_catalog.=) o.job_id)
    UNION ALL
    -- Alive but stuck finalizers: the reaper defers these at every tick.
    SELECT 'stuck_finalizer', r.target, r.job_id, r.owner_pid,
           pg_catalog.format('stage %s, run finished %s ago; owner has been %s for %s',
                             COALESCE(r.stage, '-'),
                             pg_catalog.date_trunc('second', r.finished_for),
                             r.state,
                             pg_catalog.date_trunc('second', pg_catalog.now() - r.state_change))
      FROM running r, grace
     WHERE r.guarded
       AND r.exit_code IS NOT NULL
       AND r.finished_for >= grace.g
       AND r.state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)')
       AND pg_catalog.now() - r.state_change >= grace.g
    UNION ALL
    -- Targets whose tick has to scan the whole table.
    SELECT 'missing_index', t.jobs, NULL, NULL,
           pg_catalog.format('no index of %s serves status = ''running''', t.jobs::pg_catalog.text)
      FROM targets t
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.jobs)
       AND NOT EXISTS (
           SELECT 1
             FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_attribute a ON a.attrelid = t.jobs AND a.attname = 'status'
            WHERE i.indrelid = t.jobs AND i.indisvalid
              AND (i.indkey[0] = a.attnum
                   OR i.indpred::pg_catalog.text
                      OPERATOR(pg_catalog.~) ('\{VAR :varno 1 :varattno ' || a.attnum || ' ')))
    UNION ALL
    SELECT 'missing_index', t.jobs, NULL, NULL,
           pg_catalog.format('no index of %s has id as its first column', x::pg_catalog.text)
      FROM targets t, pg_catalog.unnest(ARRAY[t.runs, t.tasks]) x
     WHERE x IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = x)
       AND NOT EXISTS (
           SELECT 1
             FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_attribute a ON a.attrelid = x AND a.attname = 'id'
            WHERE i.indrelid = x AND i.indisvalid AND i.indkey[0] = a.attnum)
    UNION ALL
    -- Targets the reaper skips.
    SELECT 'broken_target', p.target, NULL, NULL, p.problem
      FROM @extschema@.finlive_target_problems() p
)
SELECT f.reason, f.target, f.job_id, f.pid, f.detail
  FROM findings f
 ORDER BY f.reason, f.target::pg_catalog.text NULLS FIRST, f.job_id, f.detail
$$;

------------------------------------------------------------------------------
-- Privileges: reading is open to everyone, like the other diagnostics.
------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION finlive_target_problems() TO PUBLIC;
GRANT EXECUTE ON FUNCTION finlive_running_jobs() TO PUBLIC;
GRANT EXECUTE ON FUNCTION finlive_audit() TO PUBLIC;
GRANT SELECT ON finlive_running_jobs TO PUBLIC;
