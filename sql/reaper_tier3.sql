-- Rule (Tier-3, backstop): a job still running after Tiers 2 and 1 whose age
-- (now() - started_at) is at least finlive.max_running is requeued or
-- failed, whatever its ownership, its run or the stage: a stuck finalizer is
-- never immortal.  A job that Tier-2 already finalized is not reaped again.
-- [1.3] A target's own max_running overrides the server setting for it.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tier3;
SET search_path = tier3, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SET finlive.max_running = 1000;
SELECT finlive_register('jobs', 'runs', 'tasks');

-- Owned, guarded, run finished within the finalize grace (Tier-2 leaves it).
CALL add_job(1, 'deploy-staging', 0, '10 seconds', '2000 seconds');
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS finalizer_of_1_alive;
-- Owned, guarded, past the grace (Tier-2 defers it), past the ceiling.
CALL add_job(2, 'deploy-staging', 0, '10 minutes', '2000 seconds');
SELECT owner_mark(2, 2, 'deploy-staging') > 0 AS finalizer_of_2_alive;
-- Run still going, no retries left.
CALL add_job(3, 'development', NULL, NULL, '2000 seconds', attempts => 2);
-- No run at all.
CALL add_job(4, 'development', NULL, NULL, '2000 seconds');
UPDATE jobs SET run_id = NULL WHERE id = 4;
-- Past the ceiling but finalized by Tier-2 first: one reap, tier 2.
CALL add_job(5, 'testing', 0, '10 minutes', '2000 seconds');
-- Below the ceiling: untouched.
CALL add_job(6, 'development', NULL, NULL, '900 seconds');

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT finlive_is_active(1) AS owner_of_1_still_owns;
SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, errors_total
  FROM finlive_stats;

-- The ceiling boundary: age = max_running is reaped.
BEGIN;
CALL add_job(7, 'development', NULL, NULL, '1000 seconds');
CALL add_job(8, 'development', NULL, NULL, '999.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (7, 8) ORDER BY id;

-- [1.3] A target's own max_running overrides the server's for it alone.
SELECT finlive_register('jobs', 'runs', 'tasks', max_running => '2 hours');
BEGIN;
CALL add_job(9, 'development', NULL, NULL, '7200 seconds');
CALL add_job(10, 'development', NULL, NULL, '7199.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (8, 9, 10) ORDER BY id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tier3 CASCADE;
RESET client_min_messages;
