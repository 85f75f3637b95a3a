-- Rule [1.3] (a policy per target: guarded_stages): finlive_register's
-- guarded_stages argument, NULL by default, means the server setting
-- finlive.guarded_stages; a value (an array of stages, '{*}' for every
-- stage, '{}' for none) overrides it for that target alone.  Two targets
-- side by side, each with owned jobs past finalize_grace in two stages: a
-- (NULL) defers those in the server's stages, b those in its own.
-- The application's tables, in a schema of their own: two targets, jobs_a
-- and jobs_b, side by side, sharing runs and tasks.  add_job() inserts a
-- running job of either with its task (in stage) and its run (ended
-- finished_ago ago with exit_code; both NULL while the run is still going),
-- started started_ago ago.
CREATE SCHEMA pol_gs;
SET search_path = pol_gs, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE jobs_a (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    started_at   timestamptz NOT NULL
);
CREATE INDEX ON jobs_a (id) WHERE status = 'running';
CREATE TABLE jobs_b (LIKE jobs_a INCLUDING ALL);
CREATE PROCEDURE add_job(target text, id bigint, stage text, exit_code integer,
                         finished_ago interval,
                         started_ago interval DEFAULT '20 minutes')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pol_gs.tasks VALUES (id, stage);
    INSERT INTO pol_gs.runs VALUES (id, now() - finished_ago, exit_code);
    EXECUTE format('INSERT INTO pol_gs.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - $2)',
                   'jobs_' || target) USING id, started_ago;
END
$$;
\set jobs 'SELECT ''a'' AS target, id, status, attempts FROM jobs_a UNION ALL SELECT ''b'', id, status, attempts FROM jobs_b ORDER BY 1, 2'
-- Every setting the reaper reads, pinned for this file.
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.restart_grace = 0;
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
