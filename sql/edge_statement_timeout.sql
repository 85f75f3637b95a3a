-- Rule [1.2]: a query cancel, statement_timeout or lock_timeout is not a
-- job's error: it ends the tick at once -- finlive_reap_once() raises it
-- (57014, 55P03) -- with everything of that tick rolled back: no status
-- change (also of the jobs reaped before in the same tick), no hook call,
-- no reap-log row, no counter, no failing-reap record.  (finlive.hook_timeout
-- is the one cancel that is the job's own error: see sec_hook_timeout.)

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task and its run (ended ten minutes ago, exit code
-- 0): every job is due for Tier-2, and they are reaped in id order.
-- (error CONTEXT lines differ between PostgreSQL versions)
\set SHOW_CONTEXT never
CREATE SCHEMA edge_cancel;
SET search_path = edge_cancel, public;
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
CREATE PROCEDURE add_job(id bigint)
LANGUAGE sql AS $$
    INSERT INTO edge_cancel.tasks VALUES (id, 'testing');
    INSERT INTO edge_cancel.runs VALUES (id, now() - interval '10 minutes', 0);
    INSERT INTO edge_cancel.jobs VALUES (id, 'running', id, id, 0, 2, now() - interval '20 minutes');
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SET finlive.hook_timeout = 30000;
SELECT finlive_stats_reset();
\set counters 'SELECT ticks, jobs_examined, reaped_total, errors_total FROM finlive_stats'

-- on_reap sleeps 3 s for job 2, and waits for a lock on "sidecar" for job 3.
CREATE TABLE advances (job_id bigint);
CREATE TABLE sidecar (id integer);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO edge_cancel.advances VALUES (job);
    IF job = 2 THEN
        PERFORM pg_sleep(3);
    ELSIF job = 3 THEN
        LOCK TABLE edge_cancel.sidecar;
    END IF;
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks', on_reap => 'advance(bigint, integer, text)');
CALL add_job(1);
CALL add_job(2);
\set state 'SELECT (SELECT string_agg(id || '' '' || status, '', '' ORDER BY id) FROM jobs) AS jobs, (SELECT count(*) FROM advances) AS advances, (SELECT count(*) FROM finlive_reap_log WHERE target = ''jobs''::regclass) AS log_rows, (SELECT count(*) FROM finlive_reap_errors) AS failing'

-- statement_timeout shorter than the hook's sleep (under the default
-- hook_timeout, and with none).
SET statement_timeout = '500ms';
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '2.5 seconds' AS raised_at_once;
:state;
:counters;
SET finlive.hook_timeout = 0;
SET statement_timeout = '500ms';
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
RESET statement_timeout;
:state;
:counters;
SET finlive.hook_timeout = 30000;

-- In a transaction: the transaction is aborted, as by any error, and
-- nothing of the tick stays after it.
BEGIN;
SET LOCAL statement_timeout = '500ms';
SELECT * FROM finlive_reap_once();
ROLLBACK;
:state;

-- lock_timeout while a hook waits for a lock another session holds.
UPDATE jobs SET status = 'queued' WHERE id = 2;
CALL add_job(3);
SELECT dblink_connect('locker', format('dbname=%s host=%s port=%s',
       current_database(), split_part(current_setting('unix_socket_directories'), ',', 1),
       current_setting('port'))) AS locker;
SELECT dblink_exec('locker', 'BEGIN; LOCK TABLE edge_cancel.sidecar;') AS locked;
SET lock_timeout = '300ms';
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
RESET lock_timeout;
:state;
:counters;
SELECT dblink_exec('locker', 'ROLLBACK') AS unlocked;
SELECT dblink_disconnect('locker');

-- Without the timeouts, the same tick reaps everything.
UPDATE jobs SET status = 'running' WHERE id = 2;
CREATE OR REPLACE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO edge_cancel.advances VALUES (job) $$;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
:state;
:counters;

-- Clean up.
RESET finlive.hook_timeout;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_cancel CASCADE;
RESET client_min_messages;
