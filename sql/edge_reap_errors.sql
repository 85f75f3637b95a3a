-- Rule [1.2] (a reap that keeps failing is visible): each failed attempt at
-- a job is recorded in the view finlive_reap_errors (target, job_id, tier,
-- action, failures, first_failed_at, last_failed_at, sqlstate, message):
-- one row per job that is failing now, with the number of failed attempts
-- (one more each tick) and the last error; the row goes when the job is
-- reaped or is no longer running.  finlive_audit() reports each such job
-- with reason failing_reap.  Only the roles that may read the target's jobs
-- table see its rows.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task and its run (ended finished_ago ago with
-- exit_code; both NULL while the run is still going), started
-- started_ago ago.
CREATE SCHEMA edge_errors;
SET search_path = edge_errors, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE jobs (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    started_at   timestamptz NOT NULL
);
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE PROCEDURE add_job(id bigint, exit_code integer, finished_ago interval,
                         started_ago interval DEFAULT '20 minutes')
LANGUAGE sql AS $$
    INSERT INTO edge_errors.tasks VALUES (id, 'testing');
    INSERT INTO edge_errors.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO edge_errors.jobs VALUES (id, 'running', id, id, 0, 2, now() - started_ago);
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

-- on_reap refuses the jobs listed in "refused", each with its own error.
CREATE TABLE refused (job_id bigint PRIMARY KEY, sqlstate text, message text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r refused;
BEGIN
    SELECT * INTO r FROM refused WHERE job_id = job;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = r.sqlstate, MESSAGE = r.message;
    END IF;
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks', on_reap => 'advance(bigint, integer, text)');
CALL add_job(1, 0, '10 minutes');                        -- Tier-2 done: refused
CALL add_job(2, NULL, NULL, '3 hours');                  -- Tier-3 queued: refused
CALL add_job(3, 0, '10 minutes');                        -- reaped
INSERT INTO refused VALUES (1, 'P0001', 'the deploy of job 1 is not advanced'),
                           (2, '22012', 'division by zero in the advance of job 2');
\set errors 'SELECT target, job_id, tier, action, failures, last_failed_at >= first_failed_at AS in_order, sqlstate, message FROM finlive_reap_errors ORDER BY target::text, job_id'

SELECT * FROM finlive_reap_errors;
SET client_min_messages = error;   -- the WARNINGs of the refused jobs
SELECT * FROM finlive_reap_once() ORDER BY job_id;
:errors;
SELECT first_failed_at = last_failed_at AS first_is_last FROM finlive_reap_errors;
-- One more failure per tick, the first time kept, the last one moving.
SELECT first_failed_at AS first_1 FROM finlive_reap_errors WHERE job_id = 1 \gset
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
:errors;
SELECT first_failed_at = :'first_1' AS first_kept, last_failed_at > :'first_1' AS last_moved
  FROM finlive_reap_errors WHERE job_id = 1;
SELECT errors_total, reaped_total FROM finlive_stats;
-- The last error is the one shown.
UPDATE refused SET sqlstate = 'P0002', message = 'still not advanced' WHERE job_id = 1;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
:errors;
RESET client_min_messages;

-- The audit reports each one.
SELECT reason, target, job_id,
       regexp_replace(detail, 'since [^,]*,', 'since <first_failed_at>,') AS detail
  FROM finlive_audit() WHERE reason = 'failing_reap' ORDER BY job_id;

-- Readable by the roles that may read the jobs table, and by no other.
CREATE ROLE regress_errors_reader;
CREATE ROLE regress_errors_stranger;
GRANT USAGE ON SCHEMA edge_errors TO regress_errors_reader, regress_errors_stranger;
GRANT SELECT ON jobs TO regress_errors_reader;
SET ROLE regress_errors_reader;
SELECT job_id, failures FROM finlive_reap_errors ORDER BY job_id;
-- (The audit needs to read every table of the target.)
SELECT reason, job_id FROM finlive_audit() ORDER BY reason, job_id;
RESET ROLE;
GRANT SELECT ON runs, tasks TO regress_errors_reader;
SET ROLE regress_errors_reader;
SELECT reason, job_id FROM finlive_audit() ORDER BY reason, job_id;
SET ROLE regress_errors_stranger;
SELECT job_id, failures FROM finlive_reap_errors ORDER BY job_id;
SELECT reason, job_id FROM finlive_audit() ORDER BY reason, job_id;
RESET ROLE;

-- The row goes when the job is reaped ...
DELETE FROM refused WHERE job_id = 1;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
:errors;
-- ... or when the job is no longer running (here set aside by hand).
SET client_min_messages = error;
UPDATE jobs SET status = 'failed' WHERE id = 2;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
RESET client_min_messages;
:errors;
SELECT count(*) AS failing_in_audit FROM finlive_audit() WHERE reason = 'failing_reap';

-- A job that fails again after it was reaped once starts from one.
CALL add_job(4, 0, '10 minutes');
INSERT INTO refused VALUES (4, 'P0001', 'job 4 refused');
SET client_min_messages = error;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
RESET client_min_messages;
:errors;

-- An unregistered target has no failing jobs.
SELECT finlive_unregister('jobs') AS unregistered;
:errors;

-- Clean up.
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_errors CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_errors_reader, regress_errors_stranger;
DROP ROLE regress_errors_reader, regress_errors_stranger;
