-- Rule [1.3] (a policy per target: dry_run): finlive_register's dry_run
-- argument, NULL by default, means the server setting finlive.dry_run; the
-- effective dry run is finlive.dry_run OR coalesce(dry_run, false).  A
-- target in dry run is decided exactly as otherwise but nothing of it
-- changes: no status change, no hook call, no counter; it only writes the
-- reap-log rows (dry_run = true) and returns the actions.  Two targets side
-- by side: a (NULL) reaped for real, b (dry_run => true) in dry run alone;
-- with the server's dry run on, both; and dry_run => false cannot switch
-- the server's off.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_dr;
SET search_path = pol_dr, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
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
