/* finlive--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION finlive" to load this file. \quit

------------------------------------------------------------------------------
-- Ownership
------------------------------------------------------------------------------

CREATE FUNCTION finlive_mark(job_id bigint, run_id bigint DEFAULT NULL,
                             stage text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'finlive_mark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION finlive_clear(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'finlive_clear'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION finlive_clear_all()
RETURNS integer
AS 'MODULE_PATHNAME', 'finlive_clear_all'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION finlive_is_active(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'finlive_is_active'
LANGUAGE C VOLATILE PARALLEL UNSAFE COST 1;

CREATE FUNCTION finlive_fence(job_id bigint, token bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'finlive_fence'
LANGUAGE C VOLATILE PARALLEL UNSAFE COST 1;

CREATE FUNCTION finlive_owners(
    OUT job_id bigint,
    OUT run_id bigint,
    OUT stage text,
    OUT pid integer,
    OUT backend_start timestamptz,
    OUT token bigint,
    OUT since timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_owners'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100;

CREATE VIEW finlive_owners AS
    SELECT * FROM finlive_owners();

CREATE FUNCTION finlive_snapshot()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'finlive_snapshot'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

------------------------------------------------------------------------------
-- Reaper targets
------------------------------------------------------------------------------

-- One row per registered target.  Hooks are kept as their qualified signature
-- text rather than regprocedure: a regprocedure column would make pg_upgrade
-- refuse the database.  The table is an extension configuration table, so
-- pg_dump carries the registrations.
CREATE TABLE finlive_target (
    jobs          regclass    PRIMARY KEY,
    runs          regclass    NOT NULL,
    tasks         regclass,
    on_reap       text,
    gate          text,
    claim_owned   boolean     NOT NULL DEFAULT false,
    registered_by regrole     NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('finlive_target', '');
REVOKE ALL ON finlive_target FROM PUBLIC;

CREATE FUNCTION finlive_register(jobs regclass, runs regclass,
                                 tasks regclass DEFAULT NULL,
                                 on_reap regprocedure DEFAULT NULL,
                                 gate regprocedure DEFAULT NULL,
                                 claim_owned boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'finlive_register'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION finlive_unregister(jobs regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'finlive_unregister'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- SECURITY DEFINER: resolving a hook's signature needs USAGE on its schema,
-- which a role reading the list need not have.
CREATE FUNCTION finlive_targets(
    OUT jobs regclass,
    OUT runs regclass,
    OUT tasks regclass,
    OUT on_reap regprocedure,
    OUT gate regprocedure,
    OUT claim_owned boolean,
    OUT registered_by regrole,
    OUT registered_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- raises 55000 when finlive was not preloaded, like every finlive function
    SELECT @extschema@.finlive_is_active(NULL);
    SELECT t.jobs, t.runs, t.tasks,
           pg_catalog.to_regprocedure(t.on_reap),
           pg_catalog.to_regprocedure(t.gate),
           t.claim_owned, t.registered_by, t.registered_at
      FROM @extschema@.finlive_target t
     ORDER BY t.jobs::pg_catalog.oid
$$;

CREATE VIEW finlive_targets AS
    SELECT * FROM finlive_targets();

-- Dropping a registered table unregisters its target, so a dropped table
-- never lingers as a dangling OID.  SECURITY DEFINER: the role that drops the
-- table has no rights on finlive_target.
CREATE FUNCTION finlive_drop_trigger()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone record;
BEGIN
    FOR gone IN
        DELETE FROM @extschema@.finlive_target t
         USING pg_catalog.pg_event_trigger_dropped_objects() d
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.objsubid = 0
           AND d.objid IN (t.jobs, t.runs, t.tasks)
        RETURNING d.object_identity
    LOOP
        RAISE NOTICE 'finlive: target unregistered because table % was dropped',
            gone.object_identity;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION finlive_drop_trigger() FROM PUBLIC;

CREATE EVENT TRIGGER finlive_drop_trigger ON sql_drop
    EXECUTE FUNCTION finlive_drop_trigger();

------------------------------------------------------------------------------
-- The reaper
------------------------------------------------------------------------------

CREATE TABLE finlive_reap_log (
    at         timestamptz NOT NULL DEFAULT now(),
    target     regclass    NOT NULL,
    job_id     bigint      NOT NULL,
    tier       integer     NOT NULL,
    old_status text        NOT NULL,
    new_status text        NOT NULL,
    owner_pid  integer,
    dry_run    boolean     NOT NULL
);
CREATE INDEX finlive_reap_log_at ON finlive_reap_log (at);
REVOKE ALL ON finlive_reap_log FROM PUBLIC;
GRANT SELECT ON finlive_reap_log TO PUBLIC;

CREATE FUNCTION finlive_reap_once(
    OUT target regclass,
    OUT job_id bigint,
    OUT tier integer,
    OUT action text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_reap_once'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

------------------------------------------------------------------------------
-- Counters
------------------------------------------------------------------------------

CREATE FUNCTION finlive_stats(
    OUT ticks bigint,
    OUT jobs_examined bigint,
    OUT reaped_total bigint,
    OUT reaped_tier1 bigint,
    OUT reaped_tier2 bigint,
    OUT reaped_tier3 bigint,
    OUT finalizer_defers_total bigint,
    OUT errors_total bigint,
    OUT owners_active bigint,
    OUT last_tick_at timestamptz,
    OUT last_tick_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'finlive_stats'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE VIEW finlive_stats AS
    SELECT * FROM finlive_stats();

CREATE FUNCTION finlive_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'finlive_stats_reset'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

------------------------------------------------------------------------------
-- Privileges: reading is open, taking ownership and administration are not.
------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION finlive_mark(bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION finlive_clear(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION finlive_clear_all() FROM PUBLIC;
REVOKE ALL ON FUNCTION finlive_register(regclass, regclass, regclass,
                                        regprocedure, regprocedure, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION finlive_unregister(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION finlive_reap_once() FROM PUBLIC;
REVOKE ALL ON FUNCTION finlive_stats_reset() FROM PUBLIC;

GRANT SELECT ON finlive_owners, finlive_targets, finlive_stats TO PUBLIC;
