-- Rule (Tier-2, lost finalization): a running job whose run has exit_code and
-- finished_at set is left alone while finished_age < finlive.finalize_grace
-- (not a defer); past the grace it is deferred when guarded (its stage is in
-- finlive.guarded_stages and a live session owns it: finalizer_defers_total
-- += 1, still running), and otherwise finalized: exit_code 0 -> 'done', else
-- requeue-or-fail ('queued' with attempts + 1 while attempts < max_attempts,
-- else 'failed').  Only jobs with status 'running' are looked at.  [1.3] A
-- target's own finalize_grace overrides the server setting for it.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tier2;
SET search_path = tier2, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks');

CALL add_job(1, 'testing', 0, '10 minutes');          -- exit 0, past grace
CALL add_job(2, 'testing', 1, '10 minutes');          -- failed run, retries left
CALL add_job(3, 'testing', 1, '10 minutes', attempts => 2);  -- no retries left
CALL add_job(4, 'deploy-staging', 0, '1 minute');     -- within grace
CALL add_job(5, 'deploy-staging', 0, '10 minutes');   -- guarded: owned below
CALL add_job(6, 'deploy-staging', 0, '10 minutes');   -- guarded stage, no owner
CALL add_job(7, 'testing', 0, '10 minutes');          -- owned, stage not guarded
CALL add_job(8, 'testing', 0, '10 minutes');
UPDATE runs SET finished_at = NULL WHERE id = 8;         -- exit_code but no finished_at
CALL add_job(9, 'testing', 1, '10 minutes');
UPDATE jobs SET status = 'queued' WHERE id = 9;          -- not running: ignored
CALL add_job(10, 'testing', 0, '10 minutes');
UPDATE jobs SET run_id = NULL WHERE id = 10;             -- no run at all
SELECT owner_mark(5, 5, 'deploy-staging') > 0 AS finalizer_of_5_alive;
SELECT owner_mark(7, 7, 'testing') > 0 AS finalizer_of_7_alive;

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
:counters;

-- A second tick: only the guarded job is looked at again, and deferred again.
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs WHERE status = 'running' ORDER BY id;
:counters;

-- Once its finalizer is gone, the guarded job is finalized.
SELECT owner_clear(5) AS finalizer_of_5_gone;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs WHERE id = 5;

-- The grace boundary: finished_age = finalize_grace is past the grace.
-- (now() is fixed within a transaction, so the ages are exact.)
BEGIN;
CALL add_job(11, 'testing', 0, '300 seconds');
CALL add_job(12, 'testing', 0, '299.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (11, 12) ORDER BY id;

-- finalize_grace is read at each tick.
SET finlive.finalize_grace = 30;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs WHERE id IN (4, 12) ORDER BY id;
:counters;

-- [1.3] A target's own finalize_grace overrides the server's for it alone
-- (the server's is 30 seconds now), boundary included.
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '1 hour');
BEGIN;
CALL add_job(13, 'testing', 0, '3600 seconds');
CALL add_job(14, 'testing', 0, '3599.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (13, 14) ORDER BY id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tier2 CASCADE;
RESET client_min_messages;
