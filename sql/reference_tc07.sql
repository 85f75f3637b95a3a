-- Rule (reference TC-07): the budget invariant.  finlive changes neither
-- the finalize grace nor the ceiling: the defaults are 300 s and 5400 s, and
-- the Tier-3 ceiling stays above the grace, so a guarded job is always
-- deferred for a while and then always reaped in bounded time.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc07;
SET search_path = tc07, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
RESET finlive.finalize_grace;
RESET finlive.max_running;
SHOW finlive.finalize_grace;
SHOW finlive.max_running;
SELECT current_setting('finlive.max_running')::interval
     > current_setting('finlive.finalize_grace')::interval AS ceiling_above_grace;
SELECT finlive_register('jobs', 'runs', 'tasks');

-- With the defaults, an owned guarded job 10 minutes past its run is
-- deferred; 90 minutes after it started, it is reaped all the same.
CALL add_job(1, 'deploy-staging', 0, '10 minutes', '60 minutes');
CALL add_job(2, 'deploy-staging', 0, '10 minutes', '90 minutes');
SELECT owner_mark(1) > 0 AS owns_1, owner_mark(2) > 0 AS owns_2;
SELECT * FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT id, status FROM jobs ORDER BY id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc07 CASCADE;
RESET client_min_messages;
