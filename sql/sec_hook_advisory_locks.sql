-- Rule [1.2] (a hook cannot change the session that ticks beyond the job it
-- reaps): every advisory lock a gate or an on_reap hook takes in the
-- ticking session -- pg_advisory_lock, pg_advisory_lock_shared, a gate that
-- is pg_try_advisory_lock(bigint) itself, even a finlive_mark -- is gone
-- when that job is done; and a hook that calls pg_advisory_unlock_all()
-- cannot release anyone's ownership: not the owner's in its own session,
-- and the ticking session owns nothing (finlive_reap_once() refuses a
-- session that does).

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code).
CREATE SCHEMA sec_locks;
SET search_path = sec_locks, public;
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
CREATE TABLE gate_jobs (LIKE jobs INCLUDING ALL);
CREATE PROCEDURE add_job(id bigint, stage text, exit_code integer,
                         finished_ago interval, target text DEFAULT 'jobs')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_locks.tasks VALUES (id, stage);
    INSERT INTO sec_locks.runs VALUES (id, now() - finished_ago, exit_code);
    EXECUTE format('INSERT INTO sec_locks.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - interval ''20 minutes'')',
                   target) USING id;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();

-- The advisory locks a session holds, finlive's (objsubid 7966) included.
CREATE VIEW my_advisory_locks AS
    SELECT objid, objsubid, mode
      FROM pg_locks
     WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- on_reap takes advisory locks of every kind and keeps them; for one job it
-- releases every advisory lock of the session instead.
CREATE TABLE hook_saw (job_id bigint, advisory_locks bigint);
CREATE FUNCTION grab_locks(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF job = 3 THEN
        PERFORM pg_advisory_unlock_all();
    ELSE
        PERFORM pg_advisory_lock(4242);
        PERFORM pg_advisory_lock(job);
        PERFORM pg_advisory_lock_shared(1, job::integer);
        PERFORM pg_try_advisory_lock(77, 77);
        PERFORM finlive_mark(1000 + job);
    END IF;
    INSERT INTO sec_locks.hook_saw
        SELECT job, count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND pid = pg_backend_pid();
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'grab_locks(bigint, integer, text)');
-- A gate that is pg_try_advisory_lock(bigint) itself: accepted (it takes
-- bigint and returns boolean), and the lock it takes does not stay.
SELECT finlive_register('gate_jobs', 'runs', 'tasks',
                        gate => 'pg_try_advisory_lock(bigint)');

CALL add_job(1, 'testing', 0, '10 minutes');          -- done: hook grabs
CALL add_job(2, 'testing', 1, '10 minutes');          -- queued: hook grabs
CALL add_job(3, 'testing', 0, '10 minutes');          -- done: hook unlocks all
CALL add_job(4, 'deploy-staging', 0, '10 minutes');   -- owned: deferred
CALL add_job(21, 'testing', 0, '10 minutes', 'gate_jobs');
CALL add_job(22, 'testing', 0, '10 minutes', 'gate_jobs');
-- The owner, in its own session, owns job 4 and two jobs of no target.
SELECT owner_mark(4, 4, 'deploy-staging') > 0 AS owns_4,
       owner_mark(500) > 0 AS owns_500, owner_mark(501) > 0 AS owns_501;
SELECT owner_sql('SELECT pg_advisory_lock(9999)::text') IS NOT NULL AS owner_app_lock;

SELECT * FROM my_advisory_locks;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
-- The hooks held their locks while they ran ...
SELECT job_id, advisory_locks FROM hook_saw ORDER BY job_id;
-- ... and none is left in the ticking session.
SELECT * FROM my_advisory_locks;
SELECT id, status FROM jobs UNION ALL SELECT id, status FROM gate_jobs ORDER BY 1;
-- Nothing the hooks marked is owned; the owner still owns what it owned,
-- and its own application lock is its own.
SELECT job_id, stage, pid = owner_pid() AS by_owner FROM finlive_owners ORDER BY job_id;
SELECT finlive_is_active(4) AS active_4, finlive_is_active(1001) AS active_1001;
SELECT owner_sql($$SELECT count(*)::text FROM pg_locks
                   WHERE locktype = 'advisory' AND pid = pg_backend_pid()$$) AS owner_locks;

-- The same again: a second tick can run (the first left nothing behind),
-- and job 4 is still deferred, not finalized.
CALL add_job(5, 'testing', 0, '10 minutes');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM my_advisory_locks;

-- A hook that fails after taking locks: the locks go with its job's error.
CREATE OR REPLACE FUNCTION grab_locks(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_lock(4343);
    PERFORM finlive_mark(2000 + job);
    RAISE EXCEPTION 'no advance for job %', job;
END
$$;
CALL add_job(6, 'testing', 0, '10 minutes');
SELECT * FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT * FROM my_advisory_locks;
SELECT count(*) AS owners_of_2006 FROM finlive_owners WHERE job_id = 2006;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT owner_sql('SELECT pg_advisory_unlock_all()::text') IS NOT NULL AS owner_unlocked;
SELECT finlive_unregister('jobs') AS unregistered,
       finlive_unregister('gate_jobs') AS unregistered_gate;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_locks CASCADE;
RESET client_min_messages;
