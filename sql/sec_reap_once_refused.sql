-- Rule [1.2]: a session that owns jobs, or that holds any advisory lock
-- (session- or transaction-level, exclusive or shared), cannot run
-- finlive_reap_once(): ERROR 55000 saying why (a hook the tick runs could
-- release its ownership or its locks), and nothing of a tick happens.  Once
-- it owns nothing and holds no advisory lock, it may tick again.

-- The application's tables, in a schema of their own, with one job due.
CREATE SCHEMA sec_refused;
SET search_path = sec_refused, public;
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
SELECT finlive_stats_reset();
SET client_min_messages = warning;   -- the "can be guarded" NOTICE
SELECT finlive_register('jobs', 'runs');
RESET client_min_messages;
INSERT INTO runs VALUES (1, now() - interval '10 minutes', 0);
INSERT INTO jobs VALUES (1, 'running', 1, NULL, 0, 2, now() - interval '20 minutes');

-- Owning a job (of any target or none).
SELECT finlive_mark(777) > 0 AS owns_777;
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(777) AS still_owns_777;
SELECT finlive_clear(777) AS cleared;

-- An advisory lock of the application's own, session-level.
SELECT pg_advisory_lock(42);
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
SELECT pg_advisory_unlock(42) AS unlocked;

-- Shared, and of the two-key kind.
SELECT pg_advisory_lock_shared(1, 2);
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
SELECT pg_advisory_unlock_shared(1, 2) AS unlocked;

-- Transaction-level: refused while the transaction lasts.
BEGIN;
SELECT pg_advisory_xact_lock(43);
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
ROLLBACK;

-- Ownership taken and lost with pg_advisory_unlock_all() is not ownership.
SELECT finlive_mark(778) > 0 AS owns_778;
SELECT pg_advisory_unlock_all();
SELECT finlive_is_active(778) AS owns_778_still;

-- Nothing was reaped meanwhile; now the session may tick.
SELECT id, status FROM jobs;
SELECT ticks, reaped_total FROM finlive_stats;
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs;
SELECT ticks, reaped_total FROM finlive_stats;

-- Clean up.
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_refused CASCADE;
RESET client_min_messages;
