/* finlive--1.1--1.2.sql: no role becomes another through finlive */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION finlive UPDATE TO '1.2'" to load this file. \quit

-- 1.2 changes no object that owners use (finlive_mark and the other
-- ownership functions keep their shape), so live owners are untouched by
-- the update.  What changes:
--
--   finlive_target      each registration keeps the search_path its hooks
--                       run with (1.1 registrations keep the pinned
--                       "pg_catalog, pg_temp" they were made with), and the
--                       OIDs of its hooks, valid where bound_to says: a hook
--                       is the very function registered, never a function
--                       created later under its name
--   finlive_targets     shows the hooks' search_path
--   the diagnostics     finlive_targets, finlive_target_problems,
--                       finlive_running_jobs and finlive_audit are written
--                       in C: no SQL of finlive's resolves a function or an
--                       operator by a name another role could shadow, and
--                       each asks the code that decides instead of deciding
--                       again
--   finlive_reap_errors the jobs whose reap keeps failing (new)

------------------------------------------------------------------------------
-- Registrations
------------------------------------------------------------------------------

ALTER TABLE finlive_target
    ADD COLUMN search_path text,
    ADD COLUMN on_reap_id  oid,
    ADD COLUMN gate_id     oid,
    ADD COLUMN bound_to    text;
UPDATE finlive_target SET search_path = 'pg_catalog, pg_temp';
ALTER TABLE finlive_target ALTER COLUMN search_path SET NOT NULL;
-- bound_to stays NULL: the reaper binds each hook, once, to the function
-- its signature names.

-- The event trigger that unregisters a dropped table (without a message
-- prefix now), and marks a dropped hook as lost (its OID 0): the target is
-- unusable until it is registered again, and stays so through pg_dump and
-- pg_upgrade, which would otherwise bind a function created later under the
-- same name.  It runs as the extension owner with a pinned search_path and
-- names everything qualified.
CREATE OR REPLACE FUNCTION finlive_drop_trigger()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone record;
BEGIN
    UPDATE @extschema@.finlive_target t SET on_reap_id = 0
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND t.on_reap_id OPERATOR(pg_catalog.=) d.objid;
    UPDATE @extschema@.finlive_target t SET gate_id = 0
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND t.gate_id OPERATOR(pg_catalog.=) d.objid;
    FOR gone IN
        DELETE FROM @extschema@.finlive_target t
         USING pg_catalog.pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.objsubid OPERATOR(pg_catalog.=) 0
           AND d.objid OPERATOR(pg_catalog.=) ANY (ARRAY[t.jobs, t.runs, t.tasks]::pg_catalog.oid[])
        RETURNING d.object_identity
    LOOP
        RAISE NOTICE 'target unregistered because table % was dropped', gone.object_identity;
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- The diagnostics, in C
------------------------------------------------------------------------------

DROP VIEW finlive_targets;
DROP FUNCTION finlive_targets();
CREATE FUNCTION finlive_targets(
    OUT jobs regclass,
    OUT runs regclass,
    OUT tasks regclass,
    OUT on_reap regprocedure,
    OUT gate regprocedure,
    OUT claim_owned boolean,
    OUT registered_by regrole,
    OUT registered_at timestamptz,
    OUT search_path text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_targets'
LANGUAGE C STABLE PARALLEL UNSAFE;

CREATE VIEW finlive_targets AS
    SELECT * FROM finlive_targets();

CREATE OR REPLACE FUNCTION finlive_target_problems(OUT target regclass, OUT problem text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_target_problems'
LANGUAGE C STABLE PARALLEL UNSAFE;

CREATE OR REPLACE FUNCTION finlive_running_jobs(
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
AS 'MODULE_PATHNAME', 'finlive_running_jobs'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- One row per finding, ordered by reason, target, job:
--   broken_target      the reaper skips the target (table, hook, role or a
--                      privilege gone)
--   failing_reap       a job whose reap keeps failing (see finlive_reap_errors)
--   leaked_ownership   a live session owns a job that is running in no target
--   missing_index      the tick has to scan a whole table
--   stuck_finalizer    a deferred job whose owner is idle in a transaction
--                      for longer than finalize_grace, or has owned it for
--                      longer than max_running
--   unreadable_target  the caller may not read the target's tables
CREATE OR REPLACE FUNCTION finlive_audit(
    OUT reason text,
    OUT target regclass,
    OUT job_id bigint,
    OUT pid integer,
    OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_audit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

------------------------------------------------------------------------------
-- Failing reaps
------------------------------------------------------------------------------

CREATE FUNCTION finlive_reap_errors(
    OUT target regclass,
    OUT job_id bigint,
    OUT tier integer,
    OUT action text,
    OUT failures bigint,
    OUT first_failed_at timestamptz,
    OUT last_failed_at timestamptz,
    OUT sqlstate text,
    OUT message text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_reap_errors'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE VIEW finlive_reap_errors AS
    SELECT * FROM finlive_reap_errors();

------------------------------------------------------------------------------
-- Privileges: reading is open; each function shows a role only the targets
-- whose tables it may read.
------------------------------------------------------------------------------

GRANT SELECT ON finlive_targets, finlive_reap_errors TO PUBLIC;
