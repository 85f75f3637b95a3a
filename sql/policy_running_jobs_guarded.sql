-- Rule [1.3]: finlive_running_jobs.guarded -- whether the reaper guards
-- the job now (the effective kill-switch on, its task's stage in the
-- effective guarded_stages, and a live owner) -- follows each target's own
-- policy, as finlive_reap_once() does: the same job is guarded in one
-- target and not in another, and the view and the tick agree.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_rj;
SET search_path = pol_rj, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

SELECT finlive_register('jobs_a', 'runs', 'tasks');
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{build}');
\set running 'SELECT target, job_id, stage, guarded, owner_pid IS NOT NULL AS owned FROM finlive_running_jobs ORDER BY target::text, job_id'

-- In each target, owned jobs in two stages and an unowned one; every run
-- ended ten minutes ago.
CALL add_job('a', 1, 'deploy-staging', 0, '10 minutes');
CALL add_job('a', 2, 'build', 0, '10 minutes');
CALL add_job('a', 3, 'deploy-staging', 0, '10 minutes');
CALL add_job('b', 11, 'deploy-staging', 0, '10 minutes');
CALL add_job('b', 12, 'build', 0, '10 minutes');
CALL add_job('b', 13, 'build', 0, '10 minutes');
SELECT count(owner_mark(id, id, stage)) AS marked
  FROM (VALUES (1, 'deploy-staging'), (2, 'build'),
               (11, 'deploy-staging'), (12, 'build')) v(id, stage);
:running;
-- The tick defers exactly the jobs the view calls guarded (in a
-- transaction rolled back, so that they stay running).
BEGIN;
SELECT target, job_id, action FROM finlive_reap_once() ORDER BY target::text, job_id;
ROLLBACK;

-- b's stages '{*}': every owned job of b guarded, a unchanged.
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{*}');
:running;
-- b switched off alone: nothing of b guarded.
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{*}', enabled => false);
:running;
-- The server's stages changed: a follows.
SET finlive.guarded_stages = 'build';
:running;
-- The server's kill-switch off: nothing guarded anywhere.
SET finlive.enabled = off;
SELECT count(*) FILTER (WHERE guarded) AS guarded FROM finlive_running_jobs;
SET finlive.enabled = on;
-- The view and the tick agree now too.
BEGIN;
SELECT target, job_id, action FROM finlive_reap_once() ORDER BY target::text, job_id;
ROLLBACK;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_rj CASCADE;
RESET client_min_messages;
