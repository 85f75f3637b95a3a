-- Rule: 1.0 is the first release; ALTER EXTENSION finlive UPDATE TO '1.1'
-- adds the diagnostics (finlive_audit, finlive_running_jobs,
-- finlive_target_problems) and changes nothing a 1.0 user sees: live owners
-- keep their locks and tokens, registrations stay, the reaper works as
-- before.  CREATE EXTENSION without a version installs 1.1 (1.0 plus this
-- update); both ways give the same objects.  (An owner in another session
-- across the update: t/062_upgrade_live_owner.pl.)
--
-- Runs in a database of its own: the other files use the extension at the
-- default version in the regression database.
SELECT current_database() AS regress_db \gset
CREATE DATABASE finlive_upgrade;
\c finlive_upgrade
SET client_min_messages = warning;

SELECT version, superuser, relocatable, requires
  FROM pg_available_extension_versions WHERE name = 'finlive' ORDER BY version;
SELECT source, target, path FROM pg_extension_update_paths('finlive') ORDER BY 1, 2;

CREATE EXTENSION finlive VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'finlive';
SELECT to_regprocedure('finlive_audit()') IS NULL AS no_audit_in_1_0,
       to_regclass('finlive_running_jobs') IS NULL AS no_view_in_1_0;

-- A 1.0 installation in use: a target with hooks, running jobs, a live owner.
SET finlive.restart_grace = 0;
SET finlive.finalize_grace = 300;
SET finlive.guarded_stages = 'deploy-staging';
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text);
CREATE TABLE jobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                   attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE TABLE reaped (job_id bigint, tier integer, status text);
CREATE FUNCTION advance(bigint, integer, text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.reaped VALUES ($1, $2, $3)';
CREATE FUNCTION green(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SELECT finlive_register('jobs', 'runs', 'tasks', 'advance(bigint,integer,text)',
                        'green(bigint)', true);
INSERT INTO tasks VALUES (1, 'deploy-staging'), (2, 'deploy-staging');
INSERT INTO runs VALUES (1, now() - interval '10 minutes', 0),
                        (2, now() - interval '10 minutes', 0);
INSERT INTO jobs VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes'),
                        (2, 'running', 2, 2, 0, 2, now() - interval '20 minutes');
SELECT finlive_mark(1, 1, 'deploy-staging') AS token \gset
SELECT finlive_mark(42, NULL, 'elsewhere') AS token42 \gset
CREATE TEMP TABLE before_update AS
    SELECT jobs::text, runs::text, tasks::text, on_reap::text, gate::text, claim_owned,
           registered_by::text, registered_at
      FROM finlive_targets;

ALTER EXTENSION finlive UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'finlive';

-- Ownership went through the update untouched: same owner, same tokens,
-- the same lock (finlive's key space, objsubid 7966).
SELECT job_id, pid = pg_backend_pid() AS mine, stage, run_id FROM finlive_owners ORDER BY job_id;
SELECT finlive_fence(1, :token) AS fence1, finlive_fence(42, :token42) AS fence42,
       finlive_mark(1, 1, 'deploy-staging') = :token AS same_token;
SELECT count(*) AS finlive_locks FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 7966 AND pid = pg_backend_pid()
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database());

-- Registrations are kept, field for field.
SELECT count(*) AS changed_registrations
  FROM (SELECT * FROM before_update
        EXCEPT
        SELECT jobs::text, runs::text, tasks::text, on_reap::text, gate::text, claim_owned,
               registered_by::text, registered_at
          FROM finlive_targets) d;
SELECT jobs, on_reap, gate, claim_owned FROM finlive_targets;
-- finlive_target is still a configuration table that pg_dump carries.
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) AS cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'finlive';

-- The reaper after the update: the owned job is deferred, the other reaped once.
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT * FROM reaped;
SELECT id, status FROM jobs ORDER BY id;

-- The new objects see the old state.
SELECT job_id, guarded, owner_pid = pg_backend_pid() AS mine FROM finlive_running_jobs;
SELECT reason, job_id, pid = pg_backend_pid() AS mine FROM finlive_audit();

-- The updated extension has exactly the members of a fresh 1.1 install.
CREATE TEMP TABLE updated_members AS
    SELECT pg_describe_object(classid, objid, objsubid) AS member
      FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'finlive');
CREATE TEMP TABLE updated_acl AS
    SELECT p.oid::regprocedure::text AS object, p.proacl::text AS acl
      FROM pg_proc p WHERE p.proname LIKE 'finlive%'
    UNION ALL
    SELECT c.oid::regclass::text, c.relacl::text
      FROM pg_class c WHERE c.relname LIKE 'finlive%' AND c.relnamespace = 'public'::regnamespace;
SELECT member FROM updated_members
 WHERE member ~ '(audit|running_jobs|target_problems)' ORDER BY 1;

SELECT finlive_clear_all();
DROP EXTENSION finlive;
CREATE EXTENSION finlive;
SELECT extversion FROM pg_extension WHERE extname = 'finlive';
SELECT count(*) AS only_after_update FROM (
    SELECT member FROM updated_members
    EXCEPT
    SELECT pg_describe_object(classid, objid, objsubid)
      FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'finlive')) d;
SELECT count(*) AS only_in_fresh FROM (
    SELECT pg_describe_object(classid, objid, objsubid)
      FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'finlive')
    EXCEPT
    SELECT member FROM updated_members) d;
SELECT count(*) AS acl_differences FROM (
    (SELECT * FROM updated_acl
     EXCEPT
     SELECT p.oid::regprocedure::text, p.proacl::text
       FROM pg_proc p WHERE p.proname LIKE 'finlive%'
     EXCEPT
     SELECT c.oid::regclass::text, c.relacl::text
       FROM pg_class c WHERE c.relname LIKE 'finlive%' AND c.relnamespace = 'public'::regnamespace)
) d;

-- Going back is not offered.
ALTER EXTENSION finlive UPDATE TO '1.0';

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE finlive_upgrade WITH (FORCE);
