-- Rule [1.3] (a policy per target: dry_run): finlive_register's dry_run
-- argument, NULL by default, means the server setting finlive.dry_run; the
-- effective dry run is finlive.dry_run OR coalesce(dry_run, false).  A
-- target in dry run is decided exactly as otherwise but nothing of it
-- changes: no status change, no hook call, no counter; it only writes the
-- reap-log rows (dry_run = true) and returns the actions.  Two targets side
-- by side: a (NULL) reaped for real, b (dry_run => true) in dry run alone;
-- with the server's dry run on, both; and dry_run => false cannot switch
-- the server's off.
-- The application's tables, in a schema of their own: two targets, jobs_a
-- and jobs_b, side by side, sharing runs and tasks.  add_job() inserts a
-- running job of either with its task (in stage) and its run (ended
-- finished_ago ago with exit_code; both NULL while the run is still going),
-- started started_ago ago.
CREATE SCHEMA pol_dr;
SET search_path = pol_dr, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE jobs_a (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    started_at   timestamptz NOT NULL
);
CREATE INDEX ON jobs_a (id) WHERE status = 'running';
CREATE TABLE jobs_b (LIKE jobs_a INCLUDING ALL);
CREATE PROCEDURE add_job(target text, id bigint, stage text, exit_code integer,
                         finished_ago interval,
                         started_ago interval DEFAULT '20 minutes')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pol_dr.tasks VALUES (id, stage);
    INSERT INTO pol_dr.runs VALUES (id, now() - finished_ago, exit_code);
    EXECUTE format('INSERT INTO pol_dr.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - $2)',
                   'jobs_' || target) USING id, started_ago;
END
$$;
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.restart_grace = 0;
SELECT finlive_stats_reset();

CREATE TABLE advances (target text, job_id bigint, status text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO advances VALUES ('a', job, status) $$;
CREATE FUNCTION advance_b(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO advances VALUES ('b', job, status) $$;
SELECT finlive_register('jobs_a', 'runs', 'tasks', on_reap => 'advance(bigint, integer, text)');
SELECT finlive_register('jobs_b', 'runs', 'tasks', on_reap => 'advance_b(bigint, integer, text)',
                        dry_run => true);
\set policy 'SELECT jobs, dry_run, effective_dry_run FROM finlive_targets ORDER BY jobs::text'
\set log 'SELECT target, job_id, tier, new_status, dry_run FROM finlive_reap_log WHERE target::text LIKE ''jobs\\_%'' ORDER BY at, target::text, job_id'
:policy;

CALL add_job('a', 1, 'testing', 0, '10 minutes');                 -- Tier-2 done
CALL add_job('a', 2, 'development', NULL, NULL, '3 hours');       -- Tier-3 queued
CALL add_job('b', 11, 'testing', 0, '10 minutes');
CALL add_job('b', 12, 'development', NULL, NULL, '3 hours');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;
SELECT * FROM advances ORDER BY target, job_id;
:log;
SELECT reaped_total FROM finlive_stats;
-- b is decided again at the next tick, and logged again; a has nothing left.
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;

-- The server's dry run on: both targets in dry run; dry_run => false
-- cannot switch it off.
SELECT finlive_register('jobs_b', 'runs', 'tasks', on_reap => 'advance_b(bigint, integer, text)',
                        dry_run => false);
SET finlive.dry_run = on;
:policy;
CALL add_job('a', 3, 'testing', 0, '10 minutes');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;
SELECT count(*) AS hook_calls FROM advances;
SELECT reaped_total FROM finlive_stats;

-- Both off: everything is reaped for real, once.
SET finlive.dry_run = off;
:policy;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;
SELECT * FROM advances ORDER BY target, job_id;
SELECT reaped_total FROM finlive_stats;
SELECT count(*) FILTER (WHERE dry_run) AS dry_rows, count(*) FILTER (WHERE NOT dry_run) AS real_rows
  FROM finlive_reap_log WHERE target::text LIKE 'jobs\_%';

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_dr CASCADE;
RESET client_min_messages;
