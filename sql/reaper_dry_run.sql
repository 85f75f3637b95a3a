-- Rule: with finlive.dry_run = on the reaper decides exactly as usual but
-- changes no job and calls no hook: it only writes finlive_reap_log rows with
-- dry_run = true and returns the actions.  (That it sends no NOTIFY is
-- checked by the isolation spec reaper_notify.)  [1.3] A target's own
-- dry_run => true makes its ticks dry runs while finlive.dry_run is off, and
-- its dry_run => false cannot make them real while finlive.dry_run is on.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA dryrun;
SET search_path = dryrun, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE TABLE hook_calls (job_id bigint, tier integer, status text);
CREATE FUNCTION on_reap(job_id bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO dryrun.hook_calls VALUES (job_id, tier, status) $$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'on_reap(bigint, integer, text)',
                        claim_owned => true);

CALL add_job(1, 'testing', 0, '10 minutes');                -- Tier-2 done
CALL add_job(2, 'testing', 1, '10 minutes', attempts => 2); -- Tier-2 failed
CALL add_job(3, 'deploy-staging', 0, '10 minutes');         -- deferred
SELECT owner_mark(3) > 0 AS finalizer_of_3_alive;
CALL add_job(4, 'development', NULL, NULL, '5 minutes');    -- Tier-1 queued
CALL add_job(5, 'development', NULL, NULL, '2 hours');      -- Tier-3 queued
SELECT owner_mark(5) > 0 AS stuck_owner_of_5;

SET finlive.dry_run = on;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT count(*) AS hook_calls FROM hook_calls;
SELECT job_id, tier, old_status, new_status, dry_run,
       target = 'jobs'::regclass AS target_ok
  FROM finlive_reap_log WHERE target = 'jobs'::regclass ORDER BY job_id;

-- The same tick for real.
SET finlive.dry_run = off;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT * FROM hook_calls ORDER BY job_id;
SELECT job_id, tier, new_status, dry_run
  FROM finlive_reap_log WHERE target = 'jobs'::regclass ORDER BY dry_run DESC, job_id;
DELETE FROM finlive_reap_log WHERE target = 'jobs'::regclass;

-- [1.3] The target's own dry run (the server's off): decided and logged,
-- nothing changed, no hook called.
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'on_reap(bigint, integer, text)',
                        claim_owned => true, dry_run => true);
CALL add_job(6, 'testing', 0, '10 minutes');                -- Tier-2 done
SELECT dry_run, effective_dry_run FROM finlive_targets WHERE jobs = 'jobs'::regclass;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
-- The target's dry_run off, the server's on: still a dry run.
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'on_reap(bigint, integer, text)',
                        claim_owned => true, dry_run => false);
SET finlive.dry_run = on;
SELECT dry_run, effective_dry_run FROM finlive_targets WHERE jobs = 'jobs'::regclass;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SET finlive.dry_run = off;
SELECT id, status FROM jobs WHERE id = 6;
SELECT count(*) AS hook_calls_for_6 FROM hook_calls WHERE job_id = 6;
SELECT job_id, new_status, dry_run
  FROM finlive_reap_log WHERE target = 'jobs'::regclass ORDER BY at, job_id;
-- Both off: the real reap.
SELECT dry_run, effective_dry_run FROM finlive_targets WHERE jobs = 'jobs'::regclass;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs WHERE id = 6;
SELECT * FROM hook_calls WHERE job_id = 6;
DELETE FROM finlive_reap_log WHERE target = 'jobs'::regclass;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA dryrun CASCADE;
RESET client_min_messages;
