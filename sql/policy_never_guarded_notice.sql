-- Rule [1.3] (nothing guarded by accident): a target whose jobs can never
-- be guarded gets a NOTICE at registration saying so, with a hint that
-- names guarded_stages: one without a tasks table while its effective
-- guarded_stages lacks '*' (the guard reads the task's stage; the stage
-- given to finlive_mark is only a label), and one with a tasks table while
-- its effective list names no stage at all.  No NOTICE otherwise.  '*'
-- (the target's '{*}', or the server's) guards every job, those of a target
-- without a tasks table too: an owned job past the grace is deferred.

-- The application's tables, in a schema of their own.
CREATE SCHEMA pol_notice;
SET search_path = pol_notice, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE jobs (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    started_at   timestamptz NOT NULL
);
CREATE INDEX ON jobs (id) WHERE status = 'running';
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();

-- No tasks table, the server's stages (no '*'): NOTICE.
SELECT finlive_register('jobs', 'runs');
-- No tasks table, the target's own stages without '*': NOTICE.
SELECT finlive_register('jobs', 'runs', guarded_stages => '{deploy-staging}');
-- A tasks table and an empty list of the target's own: NOTICE.
SELECT finlive_register('jobs', 'runs', 'tasks', guarded_stages => '{}');
-- A tasks table and an empty server list: NOTICE.
SET finlive.guarded_stages = '';
SELECT finlive_register('jobs', 'runs', 'tasks');
SET finlive.guarded_stages = 'deploy-staging';

-- No NOTICE: a tasks table with stages; '{*}' without a tasks table; the
-- server's '*' without a tasks table.
SELECT finlive_register('jobs', 'runs', 'tasks');
SELECT finlive_register('jobs', 'runs', 'tasks', guarded_stages => '{build}');
SELECT finlive_register('jobs', 'runs', guarded_stages => '{*}');
SET finlive.guarded_stages = '*';
SELECT finlive_register('jobs', 'runs');
SET finlive.guarded_stages = 'deploy-staging';

-- '{*}' guards a target without a tasks table: the owned job is deferred,
-- the unowned one finalized.
SELECT finlive_register('jobs', 'runs', guarded_stages => '{*}');
INSERT INTO runs VALUES (1, now() - interval '10 minutes', 0),
                        (2, now() - interval '10 minutes', 0);
INSERT INTO jobs VALUES (1, 'running', 1, NULL, 0, 2, now() - interval '20 minutes'),
                        (2, 'running', 2, NULL, 0, 2, now() - interval '20 minutes');
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS owns_1;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT job_id, stage, guarded FROM finlive_running_jobs ORDER BY job_id;

-- Without '*', the mark's stage does not guard it: finalized under its
-- live owner, as the NOTICE said.
SELECT finlive_register('jobs', 'runs');
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT id, status FROM jobs ORDER BY id;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_notice CASCADE;
RESET client_min_messages;
