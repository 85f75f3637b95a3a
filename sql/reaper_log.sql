-- Rule: every reap appends one row to finlive_reap_log, in the reap's
-- transaction: at, target, job_id, tier, old_status, new_status, owner_pid
-- (the pid of the session that owned the job, NULL when none) and dry_run.
-- A defer writes no row; a rolled-back tick leaves none.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA reaplog;
SET search_path = reaplog, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SET finlive.max_running = 1000;
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);
\d finlive_reap_log

CALL add_job(1, 'testing', 0, '10 minutes');                   -- Tier-2 done
CALL add_job(2, 'deploy-staging', 0, '10 minutes', '11 minutes'); -- deferred
SELECT owner_mark(2) > 0 AS finalizer_of_2_alive;
CALL add_job(3, 'development', NULL, NULL, '5 minutes');       -- Tier-1 queued
CALL add_job(4, 'development', NULL, NULL, '2000 seconds', attempts => 2);
SELECT owner_mark(4) > 0 AS stuck_owner_of_4;                -- Tier-3 failed

BEGIN;
SELECT count(*) AS actions FROM finlive_reap_once();
ROLLBACK;
SELECT count(*) AS log_rows_after_rollback
  FROM finlive_reap_log WHERE target = 'jobs'::regclass;

BEGIN;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT target, job_id, tier, old_status, new_status,
       owner_pid = owner_pid() AS owner_is_owner, owner_pid IS NULL AS no_owner,
       dry_run, at BETWEEN now() AND clock_timestamp() AS at_this_tick
  FROM finlive_reap_log WHERE target = 'jobs'::regclass ORDER BY job_id;
COMMIT;
SELECT count(*) AS log_rows FROM finlive_reap_log WHERE target = 'jobs'::regclass;
DELETE FROM finlive_reap_log WHERE target = 'jobs'::regclass;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA reaplog CASCADE;
RESET client_min_messages;
