-- Rule [1.3] (kill-switch precedence): the effective kill-switch of a
-- target is finlive.enabled AND coalesce(enabled, true): the server switch
-- always wins.  With finlive.enabled = off, a target registered with
-- enabled => true ignores ownership like every other (no defer, no
-- Tier-1); with it on, a target registered with enabled => false ignores
-- ownership alone, and the others (true, NULL) guard as usual.  Three
-- targets: a (NULL), b (true), c (false).
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_ks;
SET search_path = pol_ks, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

CREATE TABLE jobs_c (LIKE jobs_a INCLUDING ALL);
SELECT finlive_register('jobs_a', 'runs', 'tasks', claim_owned => true);
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true, enabled => true);
SELECT finlive_register('jobs_c', 'runs', 'tasks', claim_owned => true, enabled => false);
\set policy 'SELECT jobs, enabled, effective_enabled FROM finlive_targets ORDER BY jobs::text'
-- In each target: an owned job in a guarded stage past finalize_grace
-- (deferred where the switch is on, finalized where it is off), an owned
-- claimed job whose run has not finished (left alone either way: with the
-- switch off there is no Tier-1), and an unowned one (requeued by Tier-1
-- only where the switch is on).
CREATE PROCEDURE add_set(target text, base bigint) LANGUAGE plpgsql AS $$
BEGIN
    CALL pol_ks.add_job(target, base + 1, 'deploy-staging', 0, '10 minutes');
    PERFORM owner_mark(base + 1, base + 1, 'deploy-staging');
    CALL pol_ks.add_job(target, base + 2, 'development', NULL, NULL, '5 minutes');
    PERFORM owner_mark(base + 2);
    CALL pol_ks.add_job(target, base + 3, 'development', NULL, NULL, '5 minutes');
END
$$;

-- The server switch off: it wins over enabled => true.
SET finlive.enabled = off;
:policy;
CALL add_set('a', 0);
CALL add_set('b', 10);
CALL add_set('c', 20);
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT finalizer_defers_total AS defers, reaped_tier1 FROM finlive_stats;

-- The server switch on: only c, switched off alone, ignores ownership.  (a
-- and b now requeue the unowned claimed jobs left from before, 3 and 13.)
SET finlive.enabled = on;
:policy;
CALL add_set('a', 100);
CALL add_set('b', 110);
CALL add_set('c', 120);
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT finalizer_defers_total AS defers, reaped_tier1 FROM finlive_stats;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b,
       finlive_unregister('jobs_c') AS unregistered_c;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_ks CASCADE;
RESET client_min_messages;
