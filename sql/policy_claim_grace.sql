-- Rule [1.3] (a policy per target: claim_grace): finlive_register's
-- claim_grace argument, NULL by default, means the server setting
-- finlive.claim_grace; a value overrides it for that target alone.  Two
-- claim_owned targets side by side: a (NULL) requeues an unowned job whose
-- run has not finished once the server's grace has passed since started_at,
-- b (its own grace) by its own.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_cg;
SET search_path = pol_cg, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

SELECT finlive_register('jobs_a', 'runs', 'tasks', claim_owned => true);
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true,
                        claim_grace => '10 minutes');
\set policy 'SELECT jobs, claim_grace, effective_claim_grace FROM finlive_targets ORDER BY jobs::text'
:policy;

-- Started two minutes ago, nobody owns them: past a's 30 s, within b's 10
-- minutes.  Owned ones are left alone by both.
CALL add_job('a', 1, 'development', NULL, NULL, '2 minutes');
CALL add_job('b', 11, 'development', NULL, NULL, '2 minutes');
CALL add_job('a', 2, 'development', NULL, NULL, '2 minutes');
CALL add_job('b', 12, 'development', NULL, NULL, '20 minutes');
SELECT owner_mark(2) > 0 AS owns_2, owner_mark(12) > 0 AS owns_12;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- The server's grace lengthened to an hour: a follows, b keeps 10 minutes.
SET finlive.claim_grace = 3600;
:policy;
CALL add_job('a', 3, 'development', NULL, NULL, '20 minutes');
CALL add_job('b', 13, 'development', NULL, NULL, '20 minutes');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- b's grace boundary: exactly 10 minutes after started_at is past it.
BEGIN;
CALL add_job('b', 14, 'development', NULL, NULL, '10 minutes');
CALL add_job('b', 15, 'development', NULL, NULL, '9 minutes 59.999999 seconds');
SELECT * FROM finlive_reap_once() WHERE job_id IN (14, 15) ORDER BY job_id;
COMMIT;

-- b with a zero grace: any unowned claimed job is requeued at once.
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true, claim_grace => '0');
:policy;
CALL add_job('b', 16, 'development', NULL, NULL, '0');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_cg CASCADE;
RESET client_min_messages;
