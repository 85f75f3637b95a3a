-- Rule [1.3]: a defer, and a decision to leave a job alone, change nothing
-- and take no row lock: a tick that reaps nothing writes no WAL (and so
-- dirties no page of a target).  Only a job the tick may change is locked,
-- and then written.  Measured per statement with EXPLAIN (ANALYZE, WAL),
-- which counts the WAL that finlive_reap_once() generated itself.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA wal_free;
SET search_path = wal_free, public;
CALL app_tables();
-- The WAL one tick writes, from the executor's own counters.
CREATE FUNCTION tick_wal(OUT records bigint, OUT fpi bigint, OUT bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, WAL, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON)
             SELECT * FROM public.finlive_reap_once()' INTO plan;
    records := (plan -> 0 -> 'Plan' ->> 'WAL Records')::bigint;
    fpi := (plan -> 0 -> 'Plan' ->> 'WAL FPI')::bigint;
    bytes := (plan -> 0 -> 'Plan' ->> 'WAL Bytes')::bigint;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);

-- Ten guarded jobs past their grace, each owned by a live finalizer (the
-- second session), ten claimed jobs whose worker lives, and ten running
-- jobs within every grace.
DO $$
BEGIN
    FOR i IN 1..10 LOOP
        CALL wal_free.add_job(i, 'deploy-staging', 0, '10 minutes');
        CALL wal_free.add_job(100 + i, 'build', NULL, NULL, '5 minutes');
        CALL wal_free.add_job(200 + i, 'build', NULL, NULL, '1 second');
    END LOOP;
END
$$;
SELECT count(owner_mark(id, id, 'deploy-staging')) AS finalizers_alive
  FROM jobs WHERE id <= 10;
SELECT count(owner_mark(id, id, 'build')) AS workers_alive
  FROM jobs WHERE id BETWEEN 101 AND 110;
VACUUM jobs, runs, tasks;   -- hint bits set, as on tables the reaper has seen

-- Ticks that only defer and leave jobs alone write nothing.
SELECT * FROM tick_wal();
SELECT * FROM tick_wal();
SELECT count(*) FILTER (WHERE status = 'running') AS running FROM jobs;
SELECT finalizer_defers_total AS defers FROM finlive_stats;

-- A tick that reaps writes (the row lock, the update, the log row).
SELECT owner_clear(1) AS finalizer_of_1_gone;
SELECT records > 0 AS reap_writes FROM tick_wal();
SELECT id, status FROM jobs WHERE id = 1;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA wal_free CASCADE;
RESET client_min_messages;
