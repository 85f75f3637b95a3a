-- Rule [1.3]: finlive_register's six policy arguments (finalize_grace,
-- claim_grace, max_running, guarded_stages, enabled, dry_run) default to
-- NULL, "the server setting".  A negative interval is refused with 22023
-- naming the argument, and registers nothing; zero is accepted.  A target
-- whose effective max_running is not above its effective finalize_grace --
-- from its own values, the server's, or a mix -- gets a WARNING at
-- registration (and is registered).  finlive_targets shows every argument
-- as registered and the effective value the reaper uses now, which follows
-- the server settings wherever the registered value is NULL.  Registering
-- again replaces the whole policy.

CREATE SCHEMA pol_reg;
SET search_path = pol_reg, public;
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
-- Every setting the policy defaults to, pinned for this file.
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.restart_grace = 0;
\x on
\set target 'SELECT jobs, runs, tasks, on_reap, gate, claim_owned, registered_by, search_path, finalize_grace, claim_grace, max_running, guarded_stages, enabled, dry_run, effective_finalize_grace, effective_claim_grace, effective_max_running, effective_guarded_stages, effective_enabled, effective_dry_run FROM finlive_targets WHERE jobs = ''jobs''::regclass'

-- The signature: six more arguments, each DEFAULT NULL.
SELECT pg_get_function_arguments('finlive_register'::regproc) AS arguments;

-- Negative intervals: refused, naming the argument; nothing registered.
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '-1 second');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', 'tasks', claim_grace => '-5 minutes');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', 'tasks', max_running => '-1 hour');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', 'tasks',
                        max_running => interval '1 hour' - interval '2 hours');
\echo SQLSTATE: :SQLSTATE
SELECT count(*) AS registered FROM finlive_targets;

-- Nothing given: every argument NULL, every effective value the server's.
SELECT finlive_register('jobs', 'runs', 'tasks');
:target;
-- ... and the effective values follow the server settings.
SET finlive.finalize_grace = 600;
SET finlive.max_running = 7200;
SET finlive.claim_grace = 60;
SET finlive.guarded_stages = 'build, deploy';
SET finlive.enabled = off;
SET finlive.dry_run = on;
SELECT effective_finalize_grace, effective_claim_grace, effective_max_running,
       effective_guarded_stages, effective_enabled, effective_dry_run
  FROM finlive_targets;
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';

-- Every argument given: each shown as registered and in effect.
SELECT finlive_register('jobs', 'runs', 'tasks',
                        finalize_grace => '2 minutes', claim_grace => '0',
                        max_running => '6 hours', guarded_stages => '{build, deploy}',
                        enabled => false, dry_run => true);
:target;
-- Given values do not follow the server settings (but enabled and dry_run
-- combine with theirs).
SET finlive.finalize_grace = 900;
SET finlive.dry_run = on;
SELECT effective_finalize_grace, effective_dry_run FROM finlive_targets;
SET finlive.finalize_grace = 300;
SET finlive.dry_run = off;

-- Registering again replaces the whole policy: what is not given is NULL.
SELECT finlive_register('jobs', 'runs', 'tasks', claim_grace => '45 seconds');
SELECT finalize_grace, claim_grace, max_running, guarded_stages, enabled, dry_run
  FROM finlive_targets;
\x off

-- max_running not above finalize_grace: a WARNING, from the target's own
-- values, from the target's against the server's, and at equality.
SELECT finlive_register('jobs', 'runs', 'tasks',
                        finalize_grace => '1 hour', max_running => '30 minutes');
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '2 hours');
SELECT finlive_register('jobs', 'runs', 'tasks', max_running => '5 minutes');
SELECT finlive_register('jobs', 'runs', 'tasks',
                        finalize_grace => '10 minutes', max_running => '10 minutes');
-- It is registered all the same.
SELECT jobs, effective_finalize_grace, effective_max_running FROM finlive_targets;
-- Above: no WARNING.
SELECT finlive_register('jobs', 'runs', 'tasks',
                        finalize_grace => '10 minutes', max_running => '10 minutes 1 second');

-- Clean up.
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_reg CASCADE;
RESET client_min_messages;
