-- Rule (Tier-1, dead worker): for a target registered with claim_owned =>
-- true, a running job whose run has no exit_code, that started at least
-- finlive.claim_grace ago and that no live session owns is requeued or
-- failed.  An owned job, a job younger than the grace, and every job of a
-- target registered without claim_owned are left running.  [1.3] A target's
-- own claim_grace overrides the server setting for that target.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tier1;
SET search_path = tier1, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);

CALL add_job(1, 'development', NULL, NULL, '5 minutes');     -- worker died
CALL add_job(2, 'development', NULL, NULL, '5 minutes');     -- worker alive
CALL add_job(3, 'development', NULL, NULL, '10 seconds');    -- within claim grace
CALL add_job(4, 'development', NULL, NULL, '5 minutes', attempts => 2);
CALL add_job(5, 'development', 0, '1 minute', '5 minutes');  -- exited: not Tier-1
SELECT owner_mark(2, 2, 'development') > 0 AS worker_of_2_alive;

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
:counters;

-- The worker of job 2 dies (its session gives the job up): reaped next tick.
SELECT owner_clear(2) AS worker_of_2_gone;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs WHERE id = 2;

-- The claim grace boundary: age = claim_grace is past the grace.
BEGIN;
CALL add_job(6, 'development', NULL, NULL, '30 seconds');
CALL add_job(7, 'development', NULL, NULL, '29.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (6, 7) ORDER BY id;

-- [1.3] A target's own claim_grace overrides the server's for it alone.
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true,
                        claim_grace => '10 minutes');
BEGIN;
CALL add_job(9, 'development', NULL, NULL, '600 seconds');
CALL add_job(10, 'development', NULL, NULL, '599.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (9, 10) ORDER BY id;
UPDATE jobs SET status = 'done' WHERE id = 10;

-- Without claim_owned, no Tier-1: the application does not mark its jobs
-- from the moment it claims them, so no owner means nothing.
SELECT finlive_register('jobs', 'runs', 'tasks');
SELECT claim_owned FROM finlive_targets WHERE jobs = 'jobs'::regclass;
CALL add_job(8, 'development', NULL, NULL, '5 minutes');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs WHERE id IN (3, 7, 8) ORDER BY id;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tier1 CASCADE;
RESET client_min_messages;
