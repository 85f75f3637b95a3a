-- Rule [1.2] (finlive.hook_timeout, milliseconds, default 30000, superuser,
-- 0 = no limit): a gate or on_reap call that runs longer is cancelled and
-- counts as that job's error (57014, a WARNING naming the target and the
-- job, errors_total, finlive_reap_errors) -- even when the hook catches the
-- cancel -- and the tick goes on with the next job, which is reaped.  So
-- one slow target delays the others by at most one hook_timeout per job.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task and its run (ended ten minutes ago, exit code
-- 0): every job is due for Tier-2.
CREATE SCHEMA sec_timeout;
SET search_path = sec_timeout, public;
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
CREATE TABLE gated_jobs (LIKE jobs INCLUDING ALL);
CREATE PROCEDURE add_job(id bigint, target text DEFAULT 'jobs')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_timeout.tasks VALUES (id, 'testing');
    INSERT INTO sec_timeout.runs VALUES (id, now() - interval '10 minutes', 0);
    EXECUTE format('INSERT INTO sec_timeout.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - interval ''20 minutes'')',
                   target) USING id;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

-- The default, and who may change it.
SHOW finlive.hook_timeout;
SELECT context, unit, min_val FROM pg_settings WHERE name = 'finlive.hook_timeout';

-- on_reap sleeps for job 1 (and for job 2 catches the cancel and returns
-- as if nothing happened); the gate sleeps for job 11.
CREATE TABLE advances (job_id bigint);
CREATE FUNCTION slow_advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF job = 1 THEN
        PERFORM pg_sleep(20);
    ELSIF job = 2 THEN
        BEGIN
            PERFORM pg_sleep(20);
        EXCEPTION WHEN query_canceled THEN
            NULL;
        END;
    END IF;
    INSERT INTO advances VALUES (job);
END
$$;
CREATE FUNCTION slow_gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF job = 11 THEN
        PERFORM pg_sleep(20);
    END IF;
    RETURN true;
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'slow_advance(bigint, integer, text)');
SELECT finlive_register('gated_jobs', 'runs', 'tasks', gate => 'slow_gate(bigint)');
CALL add_job(1);
CALL add_job(2);
CALL add_job(3);
CALL add_job(11, 'gated_jobs');
CALL add_job(12, 'gated_jobs');

SET finlive.hook_timeout = 200;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
-- Three hooks cancelled after 200 ms each: well under the 60 s of sleep.
SELECT clock_timestamp() - :'t0'::timestamptz < interval '10 seconds' AS cancelled_in_time;
SELECT id, status FROM jobs UNION ALL SELECT id, status FROM gated_jobs ORDER BY 1;
SELECT * FROM advances ORDER BY job_id;
SELECT reaped_total, errors_total FROM finlive_stats;
SELECT target, job_id, tier, failures, sqlstate, message
  FROM finlive_reap_errors ORDER BY target::text, job_id;

-- 0: no limit.  (Hooks that sleep 0.3 s are not cancelled; with a limit of
-- 100 ms they are.)
CREATE OR REPLACE FUNCTION slow_advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.3);
    INSERT INTO advances VALUES (job);
END
$$;
CREATE OR REPLACE FUNCTION slow_gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.3);
    RETURN true;
END
$$;
SET finlive.hook_timeout = 0;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM advances ORDER BY job_id;
SET finlive.hook_timeout = 100;
CALL add_job(4);
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT job_id, failures, sqlstate FROM finlive_reap_errors ORDER BY job_id;

-- Only a superuser sets it.
CREATE ROLE regress_sec_timeout_user;
SET ROLE regress_sec_timeout_user;
SET finlive.hook_timeout = 0;
\echo SQLSTATE: :SQLSTATE
RESET ROLE;
DROP ROLE regress_sec_timeout_user;

-- Clean up.
RESET finlive.hook_timeout;
SELECT finlive_unregister('jobs') AS unregistered,
       finlive_unregister('gated_jobs') AS unregistered_gated;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_timeout CASCADE;
RESET client_min_messages;
