-- Rule: for finlive.restart_grace after the server started, owners may still
-- be reconnecting, so the reaper makes no reap that depends on ownership
-- being absent: no Tier-1 and no Tier-2 of a job in a guarded stage; it
-- leaves those jobs running.  Tier-2 of unguarded stages and Tier-3 still
-- apply.  (The suite's server started moments ago, so a window of a day is
-- open; 0 closes it.)

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA restartgrace;
SET search_path = restartgrace, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);
SET finlive.restart_grace = 86400;
SHOW finlive.restart_grace;

CALL add_job(1, 'development', NULL, NULL, '5 minutes');   -- Tier-1 candidate
CALL add_job(2, 'deploy-staging', 0, '10 minutes');        -- guarded, no owner
CALL add_job(3, 'testing', 0, '10 minutes');               -- unguarded Tier-2
CALL add_job(4, 'development', NULL, NULL, '2 hours');     -- Tier-3

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs ORDER BY id;

-- The window closed: the jobs it held are reaped.
SET finlive.restart_grace = 0;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs ORDER BY id;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA restartgrace CASCADE;
RESET client_min_messages;
