-- Rule [1.3] (a policy per target: finalize_grace): finlive_register's
-- finalize_grace argument, NULL by default, means the server setting
-- finlive.finalize_grace; a value overrides it for that target alone.  Two
-- targets side by side: a (NULL) follows the server setting as it changes,
-- b (its own grace) keeps its own, shorter or longer, for Tier-2 finalizing
-- and deferring alike.  finlive_targets shows both, as registered and in
-- effect.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_fg;
SET search_path = pol_fg, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

SELECT finlive_register('jobs_a', 'runs', 'tasks');
SELECT finlive_register('jobs_b', 'runs', 'tasks', finalize_grace => '1 minute');
\set policy 'SELECT jobs, finalize_grace, effective_finalize_grace FROM finlive_targets ORDER BY jobs::text'
:policy;

-- Runs that ended two minutes ago: past b's grace, within a's (5 minutes).
CALL add_job('a', 1, 'testing', 0, '2 minutes');
CALL add_job('b', 11, 'testing', 0, '2 minutes');
-- Owned in a guarded stage: deferred by b (its grace passed), not yet
-- looked at by a.
CALL add_job('a', 2, 'deploy-staging', 0, '2 minutes');
CALL add_job('b', 12, 'deploy-staging', 0, '2 minutes');
SELECT owner_mark(2, 2, 'deploy-staging') > 0 AS owns_2,
       owner_mark(12, 12, 'deploy-staging') > 0 AS owns_12;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- The server's grace shortened to 1 minute: a follows, b is unchanged.
SET finlive.finalize_grace = 60;
:policy;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- b's own grace longer than the server's: a run that ended ten minutes ago
-- is finalized by a, left alone (not deferred) by b.
SELECT finlive_register('jobs_b', 'runs', 'tasks', finalize_grace => '30 minutes');
:policy;
CALL add_job('a', 3, 'testing', 0, '10 minutes');
CALL add_job('b', 13, 'testing', 0, '10 minutes');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- b's grace boundary: exactly 30 minutes is past it.
BEGIN;
CALL add_job('b', 14, 'testing', 0, '30 minutes');
CALL add_job('b', 15, 'testing', 0, '29 minutes 59.999999 seconds');
SELECT * FROM finlive_reap_once() WHERE job_id IN (14, 15) ORDER BY job_id;
COMMIT;

-- Registering b again without the argument gives it back the server's.
SELECT finlive_register('jobs_b', 'runs', 'tasks');
:policy;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_fg CASCADE;
RESET client_min_messages;
