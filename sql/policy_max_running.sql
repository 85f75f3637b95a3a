-- Rule [1.3] (a policy per target: max_running): finlive_register's
-- max_running argument, NULL by default, means the server setting
-- finlive.max_running; a value overrides it for that target alone.  Two
-- targets side by side: a (NULL) applies the Tier-3 backstop at the server's
-- ceiling, b at its own -- whatever the ownership.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_mr;
SET search_path = pol_mr, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

SELECT finlive_register('jobs_a', 'runs', 'tasks');
SELECT finlive_register('jobs_b', 'runs', 'tasks', max_running => '30 minutes');
\set policy 'SELECT jobs, max_running, effective_max_running FROM finlive_targets ORDER BY jobs::text'
:policy;

-- Running for an hour: past b's 30 minutes, within a's 90.  Owned or not.
CALL add_job('a', 1, 'development', NULL, NULL, '1 hour');
CALL add_job('b', 11, 'development', NULL, NULL, '1 hour');
CALL add_job('a', 2, 'development', NULL, NULL, '1 hour');
CALL add_job('b', 12, 'development', NULL, NULL, '1 hour');
SELECT owner_mark(2) > 0 AS owns_2, owner_mark(12) > 0 AS owns_12;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- A guarded job b defers is still reaped at b's ceiling.
CALL add_job('b', 13, 'deploy-staging', 0, '10 minutes', '45 minutes');
SELECT owner_mark(13, 13, 'deploy-staging') > 0 AS owns_13;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;

-- The server's ceiling lowered to 40 minutes: a follows, b keeps 30.
SET finlive.max_running = 2400;
:policy;
CALL add_job('b', 14, 'development', NULL, NULL, '35 minutes');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- b's ceiling boundary: exactly 30 minutes is past it.
BEGIN;
CALL add_job('b', 15, 'development', NULL, NULL, '30 minutes');
CALL add_job('b', 16, 'development', NULL, NULL, '29 minutes 59.999999 seconds');
SELECT * FROM finlive_reap_once() WHERE job_id IN (15, 16) ORDER BY job_id;
COMMIT;

-- b with a ceiling of two hours: the server's 40 minutes do not reap it.
SELECT finlive_register('jobs_b', 'runs', 'tasks', max_running => '2 hours');
CALL add_job('a', 3, 'development', NULL, NULL, '1 hour');
CALL add_job('b', 17, 'development', NULL, NULL, '1 hour');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_mr CASCADE;
RESET client_min_messages;
