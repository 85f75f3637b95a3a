-- Rule [1.3] (a policy per target: guarded_stages): finlive_register's
-- guarded_stages argument, NULL by default, means the server setting
-- finlive.guarded_stages; a value (an array of stages, '{*}' for every
-- stage, '{}' for none) overrides it for that target alone.  Two targets
-- side by side, each with owned jobs past finalize_grace in two stages: a
-- (NULL) defers those in the server's stages, b those in its own.
-- The application's tables and add_job() (00_setup), in a schema of their own:
-- two targets, jobs_a and jobs_b, side by side, sharing runs and tasks.
CREATE SCHEMA pol_gs;
SET search_path = pol_gs, public;
CALL app_tables('jobs_a', 'jobs_b');
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

SELECT finlive_register('jobs_a', 'runs', 'tasks');
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{build, lint}');
\set policy 'SELECT jobs, guarded_stages, effective_guarded_stages FROM finlive_targets ORDER BY jobs::text'
:policy;

-- Every job is owned and its run ended ten minutes ago.
CREATE PROCEDURE add_owned(target text, id bigint, stage text) LANGUAGE plpgsql AS $$
BEGIN
    CALL pol_gs.add_job(target, id, stage, 0, '10 minutes');
    PERFORM owner_mark(id, id, stage);
END
$$;
CALL add_owned('a', 1, 'deploy-staging');
CALL add_owned('a', 2, 'build');
CALL add_owned('a', 3, 'testing');
CALL add_owned('b', 11, 'deploy-staging');
CALL add_owned('b', 12, 'build');
CALL add_owned('b', 13, 'lint');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- The server's stages changed: a follows, b keeps its own.
SET finlive.guarded_stages = 'testing';
:policy;
CALL add_owned('a', 4, 'deploy-staging');
CALL add_owned('b', 14, 'testing');
CALL add_owned('b', 15, 'build');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- '{*}': every stage of b is guarded; '{}': none is.
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{*}');
CALL add_owned('b', 16, 'anything at all');
SELECT * FROM finlive_reap_once() WHERE target = 'jobs_b'::regclass ORDER BY job_id;
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{}');
:policy;
SELECT * FROM finlive_reap_once() WHERE target = 'jobs_b'::regclass ORDER BY job_id;
:jobs;

-- A NULL inside the array, or two dimensions: refused.
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{build, NULL}');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs_b', 'runs', 'tasks', guarded_stages => '{{build}, {lint}}');
\echo SQLSTATE: :SQLSTATE
SELECT guarded_stages FROM finlive_targets WHERE jobs = 'jobs_b'::regclass;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_gs CASCADE;
RESET client_min_messages;
