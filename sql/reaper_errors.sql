-- Rule: an error while handling one job (its gate, its on_reap hook, its
-- update) undoes that job's changes alone, counts in errors_total and logs a
-- WARNING naming the target and the job; the tick goes on with the next job
-- and never raises because of one job.
-- [1.2] A reap that keeps failing is visible: finlive_reap_errors has one row
-- per job failing now (attempts counted, the last error's SQLSTATE and
-- message), and the row goes once the job is reaped or no longer running.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA errors;
SET search_path = errors, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE TABLE hook_calls (job_id bigint, tier integer, status text);
CREATE FUNCTION on_reap(job_id bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO errors.hook_calls VALUES (job_id, tier, status);
    IF job_id = 2 THEN
        RAISE EXCEPTION 'hook refuses job %', job_id;
    END IF;
END
$$;
CREATE FUNCTION gate(job_id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF job_id = 3 THEN
        RAISE EXCEPTION 'gate cannot decide job %', job_id;
    END IF;
    RETURN true;
END
$$;
-- The application forbids 'failed' for job 4.
CREATE FUNCTION job_4_never_fails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 4 AND NEW.status = 'failed' THEN
        RAISE EXCEPTION 'job 4 must never fail';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER job_4_never_fails BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION job_4_never_fails();
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'on_reap(bigint, integer, text)',
                        gate => 'gate(bigint)');

CALL add_job(1, 'testing', 0, '10 minutes');
CALL add_job(2, 'testing', 0, '10 minutes');   -- the hook raises
CALL add_job(3, 'testing', 0, '10 minutes');   -- the gate raises
CALL add_job(4, 'development', NULL, NULL, '2 hours', attempts => 2);  -- update fails
CALL add_job(5, 'testing', 0, '10 minutes');

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT * FROM hook_calls ORDER BY job_id;
SELECT job_id, new_status FROM finlive_reap_log
 WHERE target = 'jobs'::regclass ORDER BY job_id;
:counters;

SELECT target, job_id, tier, action, failures, sqlstate, message,
       first_failed_at = last_failed_at AS first_is_last
  FROM finlive_reap_errors ORDER BY job_id;

-- The broken jobs fail again at every tick; the others are done with.
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
:counters;
SELECT job_id, failures, first_failed_at < last_failed_at AS last_is_later
  FROM finlive_reap_errors ORDER BY job_id;

-- Job 2 is taken off the reaper's hands, job 4 may fail now: only job 3
-- is still failing.
UPDATE jobs SET status = 'queued' WHERE id = 2;
DROP TRIGGER job_4_never_fails ON jobs;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT job_id, failures FROM finlive_reap_errors ORDER BY job_id;
DELETE FROM finlive_reap_log WHERE target = 'jobs'::regclass;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA errors CASCADE;
RESET client_min_messages;
