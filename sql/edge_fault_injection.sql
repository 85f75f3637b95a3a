-- Rule (reference TC-08, "a fault in the liveness path degrades safely"):
-- when the reaper's ownership probe fails, the job is treated as not owned
-- -- handled, never blocked -- with a WARNING naming the job and the
-- target, and the tick goes on and never raises.  The test-only setting
-- finlive.fault_injection = 'ownership_probe' (superuser) makes every probe
-- of the reaper fail: a guarded job whose finalizer is alive is then
-- finalized (its hook called once), and a claimed job whose worker is alive
-- is requeued.  Without the fault, the same jobs are deferred and left
-- alone.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA edge_fault;
SET search_path = edge_fault, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
CREATE TABLE advances (job_id bigint, tier integer, status text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO advances VALUES (job, tier, status) $$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)', claim_owned => true);

CALL add_job(1, 'deploy-staging', 0, '10 minutes');          -- guarded, owned
CALL add_job(2, 'development', NULL, NULL, '5 minutes');     -- claimed, owned
CALL add_job(3, 'testing', 0, '10 minutes');                 -- not guarded: done anyway
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS finalizer_of_1_alive,
       owner_mark(2, 2, 'development') > 0 AS worker_of_2_alive;

-- Without the fault: deferred, left alone.
SHOW finlive.fault_injection;
BEGIN;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
ROLLBACK;

-- Every probe fails: a WARNING each, and both jobs are reaped as if their
-- owners were gone; the tick does not raise.
SET finlive.fault_injection = 'ownership_probe';
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT * FROM advances ORDER BY job_id;
SELECT reaped_total, reaped_tier1, reaped_tier2, finalizer_defers_total AS defers,
       errors_total FROM finlive_stats;
-- The reap log says who owned them.
SELECT job_id, tier, new_status, owner_pid = owner_pid() AS logged_owner
  FROM finlive_reap_log WHERE target = 'jobs'::regclass ORDER BY job_id;
-- Ownership itself is untouched: the owners still own their jobs.
SELECT job_id, stage FROM finlive_owners ORDER BY job_id;
RESET finlive.fault_injection;

-- Only a superuser sets it.
CREATE ROLE regress_fault_user;
SET ROLE regress_fault_user;
SET finlive.fault_injection = 'ownership_probe';
\echo SQLSTATE: :SQLSTATE
RESET ROLE;
DROP ROLE regress_fault_user;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_fault CASCADE;
RESET client_min_messages;
