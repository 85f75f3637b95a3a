-- Rule: finlive_stats() and the view finlive_stats return one row of
-- cluster-wide counters, counted by finlive_reap_once as by the worker:
-- ticks, jobs_examined (running jobs some tier could act on), reaped_total
-- and per tier,
-- finalizer_defers_total, errors_total, owners_active (live owners now),
-- last_tick_at, last_tick_ms.  finlive_stats_reset() zeroes the counters;
-- owners_active keeps counting the owners that are still live.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA stats;
SET search_path = stats, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
\d finlive_stats
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);

SELECT ticks, jobs_examined, reaped_total, reaped_tier1, reaped_tier2,
       reaped_tier3, finalizer_defers_total, errors_total, owners_active
  FROM finlive_stats;

CALL add_job(1, 'testing', 0, '10 minutes');                -- Tier-2
CALL add_job(2, 'development', NULL, NULL, '5 minutes');    -- Tier-1
CALL add_job(3, 'development', NULL, NULL, '2 hours');      -- Tier-3
CALL add_job(4, 'deploy-staging', 0, '10 minutes');         -- deferred
CALL add_job(5, 'testing', 0, '1 minute');                  -- left alone
CALL add_job(6, 'testing', 0, '10 minutes');
UPDATE jobs SET status = 'done' WHERE id = 6;                -- not running
SELECT owner_mark(4) > 0 AS finalizer_of_4_alive;
SELECT owner_mark(100) > 0 AS another_owner;

SELECT count(*) AS actions FROM finlive_reap_once();
SELECT ticks, jobs_examined, reaped_total, reaped_tier1, reaped_tier2,
       reaped_tier3, finalizer_defers_total, errors_total, owners_active,
       last_tick_at BETWEEN now() - interval '1 minute' AND clock_timestamp()
           AS last_tick_recent,
       last_tick_ms >= 0 AS last_tick_ms_ok
  FROM finlive_stats;

SELECT count(*) AS actions FROM finlive_reap_once();
SELECT ticks, jobs_examined, reaped_total, finalizer_defers_total
  FROM finlive_stats;

-- The view and the function agree; the snapshot carries the same counters.
SELECT (SELECT row(s.*)::text FROM finlive_stats s)
     = (SELECT row(f.*)::text FROM finlive_stats() f) AS view_matches;
SELECT (finlive_snapshot() ->> 'reaped_total')::bigint AS snapshot_reaped,
       (finlive_snapshot() ->> 'finalizer_defers_total')::bigint AS snapshot_defers;

SELECT finlive_stats_reset();
SELECT ticks, jobs_examined, reaped_total, reaped_tier1, reaped_tier2,
       reaped_tier3, finalizer_defers_total, errors_total, owners_active
  FROM finlive_stats;
SELECT owner_clear(100) AS cleared;
SELECT owners_active FROM finlive_stats;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA stats CASCADE;
RESET client_min_messages;
