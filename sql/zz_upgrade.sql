-- Rule: 1.0 is the first release; the update path is 1.0 -> 1.1 -> 1.2 ->
-- 1.3, and no step changes what a user of the version before sees: live
-- owners (here in a second session) keep their locks and tokens across every
-- step, and registrations stay field for field.  1.1 adds the diagnostics
-- (finlive_audit, finlive_running_jobs, finlive_target_problems); [1.2]
-- keeps for each registration the search_path its hooks run with (a
-- registration made before 1.2 keeps the pinned 'pg_catalog, pg_temp' it
-- was made with) and adds finlive_reap_errors; [1.3] adds the policy per
-- target, NULL for every existing registration (so its effective values are
-- the server settings and nothing changes for it), and finlive_explain.
-- The library registers and reaps only at 1.2 or later: at 1.0 and 1.1
-- finlive_register and finlive_reap_once raise 55000 asking for the update,
-- while ownership works at every version.  CREATE EXTENSION without a
-- version installs 1.3; both ways give the same objects.
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

-- The owners are another session (dblink), as in production: a session
-- that owns jobs may not tick.
CREATE EXTENSION dblink;
SELECT dblink_connect('owner',
           format('dbname=%s host=%s port=%s application_name=owner',
                  current_database(),
                  split_part(current_setting('unix_socket_directories'), ',', 1),
                  current_setting('port'))) AS owner_connected;
CREATE TEMP TABLE owner_session AS
    SELECT r AS pid FROM dblink('owner', 'SELECT pg_backend_pid()') AS t(r integer);

CREATE EXTENSION finlive VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'finlive';
SELECT to_regprocedure('finlive_audit()') IS NULL AS no_audit_in_1_0,
       to_regclass('finlive_running_jobs') IS NULL AS no_view_in_1_0;

-- A 1.0 installation in use: a target with hooks, running jobs, live owners.
SET finlive.restart_grace = 0;
SET finlive.finalize_grace = 300;
SET finlive.claim_grace = 30;
SET finlive.max_running = 5400;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.enabled = on;
SET finlive.dry_run = off;
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text);
CREATE TABLE jobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                   attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE TABLE jobs11 (LIKE jobs INCLUDING INDEXES);
CREATE TABLE reaped (job_id bigint, tier integer, status text);
CREATE FUNCTION advance(bigint, integer, text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.reaped VALUES ($1, $2, $3)';
CREATE FUNCTION green(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';

-- This library does not register or reap at 1.0 ...
SELECT finlive_register('jobs', 'runs', 'tasks', 'advance(bigint,integer,text)',
                        'green(bigint)', true);
\echo SQLSTATE: :SQLSTATE
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
-- ... so the registration is the row the 1.0 library wrote (as a restore
-- of a 1.0 dump writes it).
INSERT INTO finlive_target (jobs, runs, tasks, on_reap, gate, claim_owned, registered_by)
VALUES ('jobs', 'runs', 'tasks', 'public.advance(bigint,integer,pg_catalog.text)', 'public.green(bigint)',
        true, current_user::regrole);
INSERT INTO tasks VALUES (1, 'deploy-staging'), (2, 'deploy-staging');
INSERT INTO runs VALUES (1, now() - interval '10 minutes', 0),
                        (2, now() - interval '10 minutes', 0);
INSERT INTO jobs VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes'),
                        (2, 'running', 2, 2, 0, 2, now() - interval '20 minutes');
-- Ownership works at 1.0: the second session owns job 1 and job 42.
CREATE TEMP TABLE owner_tokens (job_id bigint, token bigint);
INSERT INTO owner_tokens
    SELECT 1, r FROM dblink('owner', $$SELECT finlive_mark(1, 1, 'deploy-staging')$$) AS t(r bigint);
INSERT INTO owner_tokens
    SELECT 42, r FROM dblink('owner', $$SELECT finlive_mark(42, NULL, 'elsewhere')$$) AS t(r bigint);
SELECT job_id, token > 0 AS has_token FROM owner_tokens ORDER BY job_id;
CREATE TEMP TABLE before_update AS
    SELECT jobs::text, runs::text, tasks::text, on_reap::text, gate::text, claim_owned,
           registered_by::text, registered_at
      FROM finlive_targets;

-- After every step: the same owner, the same tokens, the same locks
-- (finlive's key space, objsubid 7966), and the registrations field for
-- field.
\set owners 'SELECT o.job_id, o.pid = (SELECT pid FROM owner_session) AS by_owner, o.stage, o.run_id, o.token = t.token AS same_token FROM finlive_owners o LEFT JOIN owner_tokens t USING (job_id) ORDER BY o.job_id'
\set fences 'SELECT job_id, finlive_fence(job_id, token) AS fence, finlive_is_active(job_id) AS active FROM owner_tokens ORDER BY job_id'
\set locks 'SELECT count(*) AS owner_locks FROM pg_locks WHERE locktype = ''advisory'' AND objsubid = 7966 AND pid = (SELECT pid FROM owner_session) AND database = (SELECT oid FROM pg_database WHERE datname = current_database())'
\set kept 'SELECT count(*) AS changed_registrations FROM (SELECT * FROM before_update EXCEPT SELECT jobs::text, runs::text, tasks::text, on_reap::text, gate::text, claim_owned, registered_by::text, registered_at FROM finlive_targets) d'

------------------------------------------------------------------------
-- 1.0 -> 1.1: the diagnostics.
------------------------------------------------------------------------
ALTER EXTENSION finlive UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'finlive';
:owners;
:fences;
:locks;
:kept;
SELECT to_regprocedure('finlive_audit()') IS NOT NULL AS has_audit,
       to_regclass('finlive_running_jobs') IS NOT NULL AS has_view,
       to_regclass('finlive_reap_errors') IS NULL AS no_reap_errors_in_1_1;
-- Still no registering or reaping with this library at 1.1.
SELECT finlive_register('jobs11', 'runs', 'tasks');
\echo SQLSTATE: :SQLSTATE
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
-- A registration made at 1.1 (the row the 1.1 library wrote).
INSERT INTO finlive_target (jobs, runs, tasks, claim_owned, registered_by)
VALUES ('jobs11', 'runs', 'tasks', false, current_user::regrole);
INSERT INTO before_update
    SELECT jobs::text, runs::text, tasks::text, on_reap::text, gate::text, claim_owned,
           registered_by::text, registered_at
      FROM finlive_targets WHERE jobs = 'jobs11'::regclass;

------------------------------------------------------------------------
-- 1.1 -> 1.2: the hooks' search_path; registrations made before keep the
-- pinned one.
------------------------------------------------------------------------
ALTER EXTENSION finlive UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'finlive';
:owners;
:fences;
:locks;
:kept;
SELECT jobs, on_reap, gate, claim_owned, search_path FROM finlive_targets ORDER BY jobs::text;
SELECT to_regclass('finlive_reap_errors') IS NOT NULL AS has_reap_errors,
       to_regprocedure('finlive_explain(regclass,bigint)') IS NULL AS no_explain_in_1_2;
-- The reaper works again: the job owned by the second session is deferred,
-- the other reaped once, its hook (bound by its signature) called once.
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT * FROM reaped;
SELECT id, status FROM jobs ORDER BY id;
-- The new diagnostics see the old state.
SELECT job_id, guarded, owner_pid = (SELECT pid FROM owner_session) AS by_owner FROM finlive_running_jobs;
SELECT reason, job_id, pid = (SELECT pid FROM owner_session) AS by_owner FROM finlive_audit();

------------------------------------------------------------------------
-- 1.2 -> 1.3: the policy per target, NULL for every registration.
------------------------------------------------------------------------
ALTER EXTENSION finlive UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'finlive';
:owners;
:fences;
:locks;
:kept;
SELECT jobs, search_path, finalize_grace, claim_grace, max_running, guarded_stages,
       enabled, dry_run
  FROM finlive_targets ORDER BY jobs::text;
-- The effective values are the server settings.
SELECT jobs,
       effective_finalize_grace = current_setting('finlive.finalize_grace')::interval
           AS finalize_grace_is_server,
       effective_claim_grace = current_setting('finlive.claim_grace')::interval
           AS claim_grace_is_server,
       effective_max_running = current_setting('finlive.max_running')::interval
           AS max_running_is_server,
       effective_guarded_stages = string_to_array(current_setting('finlive.guarded_stages'), ',')
           AS guarded_stages_is_server,
       effective_enabled = current_setting('finlive.enabled')::boolean AS enabled_is_server,
       effective_dry_run = current_setting('finlive.dry_run')::boolean AS dry_run_is_server
  FROM finlive_targets ORDER BY jobs::text;
-- Nothing changes for the reaper: the owned job is deferred again.
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT count(*) AS hook_calls FROM reaped;
SELECT finlive_explain('jobs', 1) ->> 'action' AS explain_1,
       finlive_explain('jobs', 2) ->> 'action' AS explain_2;

-- The updated extension has exactly the members and privileges of a fresh
-- 1.3 install.
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

SELECT r AS released FROM dblink('owner', 'SELECT finlive_clear_all()') AS t(r integer);
SELECT dblink_disconnect('owner');
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
