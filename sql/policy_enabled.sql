-- Rule [1.3] (a policy per target: enabled): finlive_register's enabled
-- argument, NULL by default, means the server's kill-switch finlive.enabled;
-- false switches the ownership checks off for that target alone (no defer,
-- no Tier-1: exactly the reaper before finlive), true or NULL leaves them to
-- the server switch.  Two targets side by side, each with an owned job in
-- a guarded stage past finalize_grace and a claimed job whose worker is
-- alive, and one whose worker is gone.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_en;
SET search_path = pol_en, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

SELECT finlive_register('jobs_a', 'runs', 'tasks', claim_owned => true);
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true, enabled => false);
\set policy 'SELECT jobs, enabled, effective_enabled FROM finlive_targets ORDER BY jobs::text'
:policy;

CALL add_job('a', 1, 'deploy-staging', 0, '10 minutes');               -- finalizer alive
CALL add_job('a', 2, 'development', NULL, NULL, '5 minutes');          -- worker alive
CALL add_job('a', 3, 'development', NULL, NULL, '5 minutes');          -- worker gone
CALL add_job('b', 11, 'deploy-staging', 0, '10 minutes');
CALL add_job('b', 12, 'development', NULL, NULL, '5 minutes');
CALL add_job('b', 13, 'development', NULL, NULL, '5 minutes');
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS owns_1, owner_mark(2) > 0 AS owns_2,
       owner_mark(11, 11, 'deploy-staging') > 0 AS owns_11, owner_mark(12) > 0 AS owns_12;
-- a: defers 1, leaves 2, requeues 3.  b: finalizes 11 under its live
-- finalizer, and has no Tier-1 at all (12 and 13 wait for the ceiling).
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;
SELECT finalizer_defers_total AS defers, reaped_tier1, reaped_tier2 FROM finlive_stats;

-- enabled => true is the same as NULL while the server switch is on.
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true, enabled => true);
:policy;
CALL add_job('b', 14, 'deploy-staging', 0, '10 minutes');
SELECT owner_mark(14, 14, 'deploy-staging') > 0 AS owns_14;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- The Tier-3 backstop applies whatever the switch.
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true, enabled => false);
CALL add_job('b', 15, 'development', NULL, NULL, '3 hours');
SELECT owner_mark(15) > 0 AS owns_15;
SELECT * FROM finlive_reap_once() WHERE target = 'jobs_b'::regclass ORDER BY job_id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_en CASCADE;
RESET client_min_messages;
