-- Rule (reference TC-08): never raise.  The ownership functions degrade
-- safely on NULL input; a fault while handling one job (here its gate
-- raises) does not break the tick, which goes on and processes the other
-- jobs.  A fault in the ownership probe itself (the hidden test setting
-- finlive.fault_injection = 'ownership_probe') never breaks the tick
-- either: the job is treated as not owned, conservatively reaped, with a
-- WARNING, and the owner's ownership is untouched.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc08;
SET search_path = tc08, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'

SELECT finlive_mark(NULL, NULL, NULL) IS NULL AS mark_null,
       finlive_clear(NULL) AS clear_null,
       finlive_is_active(NULL) AS active_null;
SELECT finlive_mark(1234, 1, 'deploy-staging') > 0 AS marked;
SELECT finlive_is_active(1234) AS active;
SELECT (finlive_snapshot() ->> 'active')::int >= 1 AS snapshot_active,
       finlive_snapshot() -> 'jobs' @> '[1234]' AS snapshot_lists_it;
SELECT finlive_clear(1234) AS cleared;
SELECT finlive_is_active(1234) AS active;

CREATE FUNCTION gate(job_id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF job_id = 1 THEN
        RAISE EXCEPTION 'gate exploded';
    END IF;
    RETURN true;
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks', gate => 'gate(bigint)');
CALL add_job(1, 'deploy-staging', 0, '600 seconds');
CALL add_job(2, 'deploy-staging', 0, '600 seconds');
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs ORDER BY id;
SELECT errors_total FROM finlive_stats;

-- The liveness probe fails: job 3's live finalizer (another session) cannot
-- be seen, so the job is reaped once, and the tick goes on.
UPDATE jobs SET status = 'queued' WHERE id = 1;
CALL add_job(3, 'deploy-staging', 0, '600 seconds');
SELECT owner_mark(3, 3, 'deploy-staging') > 0 AS finalizer_of_3_alive;
SET finlive.fault_injection = 'ownership_probe';
SELECT * FROM finlive_reap_once();
RESET finlive.fault_injection;
SELECT id, status FROM jobs WHERE id = 3;
SELECT finlive_is_active(3) AS still_owned;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc08 CASCADE;
RESET client_min_messages;
