-- Rule: finlive.enabled = off is the kill-switch.  The reaper then ignores
-- ownership completely, exactly as before finlive: no defers (an owned job
-- in a guarded stage is finalized) and no Tier-1 reaps; Tier-3 still
-- applies.  The ownership functions keep working.  Turning it on again
-- restores the defers.  [1.3] A target's own enabled => false does the same
-- for that target alone; its enabled => true cannot turn the reaper's use
-- of ownership on while finlive.enabled is off (the server switch wins).

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA killswitch;
SET search_path = killswitch, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);
SET finlive.enabled = off;

CALL add_job(1, 'deploy-staging', 0, '10 minutes');        -- owned, guarded
CALL add_job(2, 'development', NULL, NULL, '5 minutes');   -- dead worker
CALL add_job(3, 'development', NULL, NULL, '2 hours');     -- past the ceiling
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS marked;
SELECT finlive_is_active(1) AS is_active;
SELECT job_id, stage FROM finlive_owners;

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
:counters;

-- Back on: the same situation defers again, and the dead worker of job 2
-- is reaped by Tier-1.
SET finlive.enabled = on;
CALL add_job(4, 'deploy-staging', 0, '10 minutes');
SELECT owner_mark(4, 4, 'deploy-staging') > 0 AS marked;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
:counters;

-- [1.3] The target's own switch off (the server's on): job 5's live
-- finalizer is not deferred to, job 6's dead worker is not Tier-1 reaped,
-- and job 4, still owned, is finalized now.
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true, enabled => false);
CALL add_job(5, 'deploy-staging', 0, '10 minutes');        -- owned, guarded
CALL add_job(6, 'development', NULL, NULL, '5 minutes');   -- dead worker
SELECT owner_mark(5, 5, 'deploy-staging') > 0 AS marked;
SELECT enabled, effective_enabled FROM finlive_targets WHERE jobs = 'jobs'::regclass;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
-- The target's switch on, the server's off: off.
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true, enabled => true);
SET finlive.enabled = off;
CALL add_job(7, 'deploy-staging', 0, '10 minutes');        -- owned, guarded
SELECT owner_mark(7, 7, 'deploy-staging') > 0 AS marked;
SELECT enabled, effective_enabled FROM finlive_targets WHERE jobs = 'jobs'::regclass;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
-- Both on: job 6's dead worker is reaped at last.
SET finlive.enabled = on;
SELECT enabled, effective_enabled FROM finlive_targets WHERE jobs = 'jobs'::regclass;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs WHERE id >= 4 ORDER BY id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA killswitch CASCADE;
RESET client_min_messages;
