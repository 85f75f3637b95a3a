/* finlive--1.2--1.3.sql: a policy per target, and finlive_explain */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION finlive UPDATE TO '1.3'" to load this file. \quit

-- Live owners are untouched by the update, and every registration keeps
-- NULL policy values: the server settings, exactly as before.
--
--   finlive_target      six policy columns; NULL means the server setting
--   finlive_register    takes them as six more arguments (DEFAULT NULL)
--   finlive_targets     shows them as registered and as in effect
--   finlive_explain     what the reaper would do with one job now, and why

ALTER TABLE finlive_target
    ADD COLUMN finalize_grace interval,
    ADD COLUMN claim_grace    interval,
    ADD COLUMN max_running    interval,
    ADD COLUMN guarded_stages text[],
    ADD COLUMN enabled        boolean,
    ADD COLUMN dry_run        boolean;

------------------------------------------------------------------------------
-- finlive_register, with the policy.  Replacing a function with a longer
-- argument list means a new function: the roles that were granted EXECUTE
-- on the old one are granted it on the new one, as changes of their own
-- (so that pg_dump carries them), not as part of the extension's initial
-- privileges.
------------------------------------------------------------------------------

DO $upgrade$
DECLARE
    old_fn pg_catalog.regprocedure :=
        '@extschema@.finlive_register(pg_catalog.regclass, pg_catalog.regclass,
          pg_catalog.regclass, pg_catalog.regprocedure, pg_catalog.regprocedure,
          boolean)';
    new_fn pg_catalog.regprocedure;
    grantees pg_catalog.regrole[];
    grantee pg_catalog.regrole;
    initial pg_catalog.aclitem[];
BEGIN
    SELECT pg_catalog.array_agg(a.grantee::pg_catalog.regrole) INTO grantees
      FROM pg_catalog.pg_proc p,
           LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid OPERATOR(pg_catalog.=) old_fn
       AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
       AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
       AND a.grantee OPERATOR(pg_catalog.<>) 0;

    DROP FUNCTION @extschema@.finlive_register(regclass, regclass, regclass,
                                               regprocedure, regprocedure, boolean);
    CREATE FUNCTION @extschema@.finlive_register(
        jobs regclass, runs regclass,
        tasks regclass DEFAULT NULL,
        on_reap regprocedure DEFAULT NULL,
        gate regprocedure DEFAULT NULL,
        claim_owned boolean DEFAULT false,
        finalize_grace interval DEFAULT NULL,
        claim_grace interval DEFAULT NULL,
        max_running interval DEFAULT NULL,
        guarded_stages text[] DEFAULT NULL,
        enabled boolean DEFAULT NULL,
        dry_run boolean DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'finlive_register'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
    new_fn := '@extschema@.finlive_register(pg_catalog.regclass, pg_catalog.regclass,
               pg_catalog.regclass, pg_catalog.regprocedure, pg_catalog.regprocedure,
               boolean, interval, interval, interval, text[], boolean, boolean)';
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', new_fn);

    SELECT i.initprivs INTO initial
      FROM pg_catalog.pg_init_privs i
     WHERE i.objoid OPERATOR(pg_catalog.=) new_fn
       AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass;
    FOREACH grantee IN ARRAY COALESCE(grantees, '{}') LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', new_fn, grantee);
    END LOOP;
    UPDATE pg_catalog.pg_init_privs i SET initprivs = initial
     WHERE i.objoid OPERATOR(pg_catalog.=) new_fn
       AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass;
END;
$upgrade$;

------------------------------------------------------------------------------
-- finlive_targets, with the policy as registered and as in effect
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
    OUT search_path text,
    OUT finalize_grace interval,
    OUT claim_grace interval,
    OUT max_running interval,
    OUT guarded_stages text[],
    OUT enabled boolean,
    OUT dry_run boolean,
    OUT effective_finalize_grace interval,
    OUT effective_claim_grace interval,
    OUT effective_max_running interval,
    OUT effective_guarded_stages text[],
    OUT effective_enabled boolean,
    OUT effective_dry_run boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'finlive_targets'
LANGUAGE C STABLE PARALLEL UNSAFE;

CREATE VIEW finlive_targets AS
    SELECT * FROM finlive_targets();
GRANT SELECT ON finlive_targets TO PUBLIC;

------------------------------------------------------------------------------
-- Why is this job not reaped?
------------------------------------------------------------------------------

-- Runs with the caller's privileges: a role that may not read the jobs
-- table gets 42501.
CREATE FUNCTION finlive_explain(jobs regclass, job_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'finlive_explain'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
