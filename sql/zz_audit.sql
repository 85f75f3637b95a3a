-- Rule (1.1 diagnostics, as of 1.3): finlive_running_jobs lists each
-- registered target's running jobs with their run, stage, owner and the
-- owner's pg_stat_activity row; finlive_audit() lists what an operator
-- should look at, one reason per row: leaked_ownership (owned, running in no
-- target), stuck_finalizer (a guarded owner past the grace that has owned
-- the job longer than the target's max_running; one idle in a transaction
-- longer than finalize_grace is checked with a second session in
-- t/061_audit_idle_owner.pl), [1.2] failing_reap (a job whose reap keeps
-- failing, with the attempts and the last error), missing_index,
-- broken_target (the reaper skips it) and unreadable_target (the caller may
-- not read it, so nothing is claimed about leaks).  Both read the
-- application's tables with the caller's rights.
--
-- Runs in a database of its own, so that only its own targets and owners
-- are there to be found.
SELECT current_database() AS regress_db \gset
CREATE DATABASE finlive_audit;
\c finlive_audit
CREATE EXTENSION finlive;
SELECT extversion FROM pg_extension WHERE extname = 'finlive';

CREATE SCHEMA "Audit";
SET search_path = "Audit", public;
SET finlive.enabled = on;
SET finlive.finalize_grace = 300;
SET finlive.guarded_stages = 'testing, "deploy-staging"';

-- A target with no index at all: every missing index is reported.
CREATE TABLE "Runs" (id integer, finished_at timestamptz, exit_code integer);
CREATE TABLE tasks (id bigint, stage varchar(40));
CREATE TABLE "Jobs" (id integer, status varchar(20), run_id integer, task_id bigint,
                     attempts integer, max_attempts integer, started_at timestamptz);
SET client_min_messages = warning;
SELECT finlive_register('"Jobs"', '"Runs"', 'tasks');
RESET client_min_messages;
SELECT reason, target, job_id, pid, detail FROM finlive_audit();

-- Indexes that serve the reaper's queries silence those rows: a partial
-- index on status = 'running', an index whose first key is status, and
-- indexes led by id on runs and tasks.
CREATE INDEX ON "Jobs" (id) WHERE status = 'running';
CREATE UNIQUE INDEX ON "Runs" (id);
CREATE INDEX ON tasks (id, stage);
SELECT count(*) AS findings FROM finlive_audit();
DROP INDEX "Jobs_id_idx";
CREATE INDEX ON "Jobs" (status, started_at);
SELECT count(*) AS findings FROM finlive_audit();
-- An index with status as a later key column does not serve it.
DROP INDEX "Jobs_status_started_at_idx";
CREATE INDEX ON "Jobs" (started_at, status);
SELECT reason, target, detail FROM finlive_audit();
CREATE INDEX ON "Jobs" (status);

-- Running and other jobs: only 'running' rows are listed, with run and task.
INSERT INTO tasks VALUES (1, 'deploy-staging'), (2, 'testing'), (3, 'build');
INSERT INTO "Runs" VALUES (1, now() - interval '10 minutes', 0),
                          (2, now() - interval '1 minute', 1),
                          (3, NULL, NULL);
INSERT INTO "Jobs" VALUES
    (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes'),
    (2, 'running', 2, 2, 0, 2, now() - interval '5 minutes'),
    (3, 'running', 3, 3, 0, 2, now() - interval '1 minute'),
    (4, 'done',    1, 1, 0, 2, now() - interval '1 hour');
SELECT target, job_id, stage, running_for >= interval '19 minutes' AS long_running,
       exit_code, finished_for >= interval '9 minutes' AS past_grace,
       guarded, owner_pid
  FROM finlive_running_jobs ORDER BY job_id;

-- This session marks job 1 (guarded stage) and job 3 (not a guarded stage):
-- the view shows the owner's identity and what it is doing right now.
SELECT finlive_mark(1, 1, 'deploy-staging') AS token1 \gset
SELECT finlive_mark(3, 3, 'build') > 0 AS marked;
SELECT job_id, guarded, owner_pid = pg_backend_pid() AS owner_is_me,
       owner_backend_start = (SELECT backend_start FROM pg_stat_activity
                               WHERE pid = pg_backend_pid()) AS same_backend_start,
       token = :token1 AS token_ok, owner_stage, state,
       query LIKE '%finlive_running_jobs%' AS shows_query,
       query_start IS NOT NULL AS has_query_start
  FROM finlive_running_jobs ORDER BY job_id;
-- The kill-switch off: the reaper ignores ownership, so nothing is guarded.
SET finlive.enabled = off;
SELECT job_id, guarded FROM finlive_running_jobs ORDER BY job_id;
SET finlive.enabled = on;
-- '*' guards every job, a stage list without the stage guards nothing.
SET finlive.guarded_stages = '*';
SELECT job_id, guarded FROM finlive_running_jobs ORDER BY job_id;
SET finlive.guarded_stages = 'deploy';
SELECT job_id, guarded FROM finlive_running_jobs ORDER BY job_id;
SET finlive.guarded_stages = 'testing, "deploy-staging"';

-- A live owner of this session is active, not idle: no stuck finalizer.
-- Ownership of a job that runs in no target is a leak.
SELECT finlive_mark(4) > 0 AS marked_done_job, finlive_mark(77) > 0 AS marked_unknown;
SELECT reason, target, job_id, pid = pg_backend_pid() AS pid_is_me,
       detail LIKE 'owned since % but running in no target' AS detail_ok
  FROM finlive_audit();
SELECT finlive_clear(4), finlive_clear(77);
SELECT count(*) AS findings FROM finlive_audit();

-- A second target without a tasks table: its stage is NULL, guarded only by '*'.
CREATE TABLE plain_runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE plain_jobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                         attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON plain_jobs (id) WHERE status = 'running';
SELECT finlive_register('plain_jobs', 'plain_runs');
INSERT INTO plain_runs VALUES (10, now() - interval '10 minutes', 0);
INSERT INTO plain_jobs VALUES (10, 'running', 10, NULL, 0, 2, now() - interval '20 minutes');
SELECT finlive_mark(10) > 0 AS marked;
SELECT target, job_id, stage, guarded FROM finlive_running_jobs ORDER BY target::text, job_id;
SET finlive.guarded_stages = '*';
SELECT target, job_id, stage, guarded FROM finlive_running_jobs ORDER BY target::text, job_id;
SET finlive.guarded_stages = 'testing, "deploy-staging"';

-- A target whose hook is dropped is skipped by the reaper: a broken target.
CREATE FUNCTION plain_gate(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SELECT finlive_register('plain_jobs', 'plain_runs', gate => 'plain_gate(bigint)');
SELECT count(*) AS findings FROM finlive_audit();
DROP FUNCTION plain_gate(bigint);
SELECT reason, target, job_id, pid, detail FROM finlive_audit();
SELECT * FROM finlive_target_problems();
SELECT finlive_register('plain_jobs', 'plain_runs');
SELECT count(*) AS problems FROM finlive_target_problems();

-- A role that may not read a target's tables: the view leaves that target
-- out, the audit names it and claims no leak (the job may run there).
CREATE ROLE regress_finlive_reader;
GRANT USAGE ON SCHEMA "Audit" TO regress_finlive_reader;
GRANT SELECT ON plain_jobs, plain_runs TO regress_finlive_reader;
SET ROLE regress_finlive_reader;
SELECT target, job_id, owner_pid IS NOT NULL AS owned FROM finlive_running_jobs;
SELECT reason, target, job_id, detail FROM finlive_audit();
RESET ROLE;
-- [1.2] A job whose reap keeps failing (here its hook raises) is reported
-- with the number of attempts and the last error.  (A session that owns
-- jobs may not tick: this one gives its jobs up first.)
SELECT finlive_clear_all() >= 0 AS released;
SET finlive.restart_grace = 0;
CREATE TABLE fail_runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE fail_jobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                        attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON fail_jobs (id) WHERE status = 'running';
CREATE FUNCTION fail_hook(bigint, integer, text) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'hook refuses job %', $1; END $$;
SELECT finlive_register('fail_jobs', 'fail_runs', on_reap => 'fail_hook(bigint,integer,text)',
                        guarded_stages => '{*}');
INSERT INTO fail_runs VALUES (20, now() - interval '10 minutes', 0);
INSERT INTO fail_jobs VALUES (20, 'running', 20, NULL, 0, 2, now() - interval '20 minutes');
SELECT target, job_id, tier, action FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT reason, target, job_id, pid,
       detail LIKE '1 failed attempts since %, the last: hook refuses job 20 (SQLSTATE P0001)'
           AS detail_ok
  FROM finlive_audit() WHERE reason = 'failing_reap';
SELECT finlive_unregister('fail_jobs');

-- [1.2] A guarded owner past the grace is stuck only once it has owned the
-- job longer than the target's max_running (here 2 seconds): an owner that
-- is merely past finalize_grace is the usual finalizer at work.
CREATE TABLE stuck_jobs (LIKE fail_jobs INCLUDING INDEXES);
SELECT finlive_register('stuck_jobs', 'fail_runs', guarded_stages => '{*}',
                        finalize_grace => '1 second', max_running => '2 seconds');
INSERT INTO fail_runs VALUES (30, now() - interval '10 minutes', 0);
INSERT INTO stuck_jobs VALUES (30, 'running', 30, NULL, 0, 2, now());
SELECT finlive_mark(30, 30, 'deploy') > 0 AS marked;
SELECT job_id, guarded FROM finlive_running_jobs WHERE target = 'stuck_jobs'::regclass;
SELECT count(*) AS stuck_findings FROM finlive_audit() WHERE reason = 'stuck_finalizer';
SELECT pg_sleep(2.2);
SELECT reason, target, job_id, pid = pg_backend_pid() AS pid_is_me,
       detail LIKE 'stage -, run finished at %; session % has owned it since %, longer than max_running (@ 2 secs)'
           AS detail_ok
  FROM finlive_audit() WHERE reason = 'stuck_finalizer';
SELECT finlive_clear(30) AS released, finlive_unregister('stuck_jobs');
RESET finlive.restart_grace;

-- Everyone may call the diagnostics.
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_finlive_reader', p.oid, 'EXECUTE') AS public_execute,
       p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.proname IN ('finlive_audit', 'finlive_running_jobs', 'finlive_target_problems')
 ORDER BY p.proname;
SELECT has_table_privilege('regress_finlive_reader', 'finlive_running_jobs', 'SELECT')
       AS view_readable;

-- Clean up: ownership, targets, tables, the role.
SELECT finlive_clear_all();
SELECT finlive_unregister('"Jobs"'), finlive_unregister('plain_jobs');
RESET search_path;
RESET finlive.enabled;
RESET finlive.finalize_grace;
RESET finlive.guarded_stages;
SET client_min_messages = warning;
DROP SCHEMA "Audit" CASCADE;
DROP EXTENSION finlive;
\c :regress_db
SET client_min_messages = warning;
DROP DATABASE finlive_audit WITH (FORCE);
DROP ROLE regress_finlive_reader;
