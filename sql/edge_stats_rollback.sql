-- Rule [1.2] (only committed work counts): a finlive_reap_once() whose
-- transaction or savepoint rolls back -- a ROLLBACK, a ROLLBACK TO
-- SAVEPOINT, a PL/pgSQL block whose exception handler undoes it, a
-- released savepoint inside a transaction that rolls back -- adds nothing
-- to finlive_stats (no tick, no examined job, no reap, no defer, no error);
-- the same tick committed counts once.  (A transaction that is prepared and
-- then rolled back is the TAP suite's: the temp instance has
-- max_prepared_transactions = 0.)

-- The application's tables, in a schema of their own: one job to finalize,
-- one to defer, one whose hook fails.
CREATE SCHEMA edge_stats;
SET search_path = edge_stats, public;
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
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF job = 3 THEN
        RAISE EXCEPTION 'no advance for job %', job;
    END IF;
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks', on_reap => 'advance(bigint, integer, text)');
INSERT INTO tasks VALUES (1, 'testing'), (2, 'deploy-staging'), (3, 'testing');
INSERT INTO runs SELECT g, now() - interval '10 minutes', 0 FROM generate_series(1, 3) g;
INSERT INTO jobs SELECT g, 'running', g, g, 0, 2, now() - interval '20 minutes'
  FROM generate_series(1, 3) g;
SELECT owner_mark(2, 2, 'deploy-staging') > 0 AS owns_2;
SET client_min_messages = error;   -- job 3's WARNING, every tick
SELECT finlive_stats_reset();
\set counters 'SELECT ticks, jobs_examined, reaped_total, reaped_tier2, finalizer_defers_total AS defers, errors_total, last_tick_at IS NOT NULL AS ticked FROM finlive_stats'
:counters;

-- Rolled back.
BEGIN;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
ROLLBACK;
:counters;

-- In a savepoint rolled back, in a transaction that commits.
BEGIN;
SAVEPOINT tick;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
ROLLBACK TO SAVEPOINT tick;
COMMIT;
:counters;

-- Undone by a PL/pgSQL exception handler.
DO $$
BEGIN
    PERFORM finlive_reap_once();
    RAISE EXCEPTION 'undo the tick';
EXCEPTION WHEN raise_exception THEN
    NULL;
END
$$;
:counters;

-- Two ticks in released savepoints, in a transaction that rolls back.
BEGIN;
SAVEPOINT a;
SELECT count(*) AS actions FROM finlive_reap_once();
RELEASE SAVEPOINT a;
SAVEPOINT b;
SELECT count(*) AS actions FROM finlive_reap_once();
RELEASE SAVEPOINT b;
ROLLBACK;
:counters;
SELECT id, status FROM jobs ORDER BY id;

-- A rolled-back tick and a committed one in the same transaction: only the
-- committed one counts.
BEGIN;
SAVEPOINT undone;
SELECT count(*) AS actions FROM finlive_reap_once();
ROLLBACK TO SAVEPOINT undone;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
COMMIT;
:counters;
SELECT id, status FROM jobs ORDER BY id;

-- Committed without a transaction block: counts.
SELECT * FROM finlive_reap_once() ORDER BY job_id;
:counters;

-- Clean up.
RESET client_min_messages;
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_stats CASCADE;
RESET client_min_messages;
