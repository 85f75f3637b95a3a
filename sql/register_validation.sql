-- Rule: finlive_register checks the target's tables before accepting it.
-- A missing column or a column of the wrong type fails with an error naming
-- the table, the column and the accepted types (dropped columns do not
-- count); on_reap must take (bigint, integer, text) and gate must take
-- (bigint) and return boolean, else an error names the function.  Any other
-- columns are ignored.  Registering the same jobs table again replaces the
-- target; finlive_unregister says whether there was one.  Registrations live
-- in a table that pg_dump carries (an extension configuration table).
-- [1.3] A target whose jobs can never be guarded (no tasks table while the
-- effective guarded_stages lacks '*', or a tasks table and an empty list)
-- gets a NOTICE with a hint naming guarded_stages.  The policy arguments:
-- NULL is the server setting; a negative interval is refused (22023, naming
-- the argument); an effective max_running not above finalize_grace gets a
-- WARNING; finlive_targets shows each argument as registered and in effect.
CREATE SCHEMA regval;
SET search_path = regval, public;
CREATE TABLE jobs (id bigint, status text, run_id bigint, task_id bigint,
                   attempts integer, max_attempts integer,
                   started_at timestamptz, extra text);
CREATE TABLE runs (id bigint, finished_at timestamptz, exit_code integer, extra text);
CREATE TABLE tasks (id bigint, stage text, extra text);
CREATE FUNCTION hook(bigint, integer, text) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION gate(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';

SELECT count(*) AS targets_before FROM finlive_targets;
SELECT finlive_register('jobs', 'runs', 'tasks', 'hook(bigint,integer,text)',
                        'gate(bigint)', true);
SELECT jobs, runs, tasks, on_reap, gate, claim_owned,
       registered_by = current_user::regrole AS registered_by_me
  FROM finlive_targets;

-- Without an index that serves status = 'running' the registration says so;
-- with one it is silent.
CREATE INDEX ON jobs (id) WHERE status = 'running';

-- Registering again replaces the target (now without a tasks table: none
-- of its jobs can be guarded under the default stages).
SELECT finlive_register('jobs', 'runs');
SELECT jobs, runs, tasks, on_reap, gate, claim_owned FROM finlive_targets;

-- The registrations are an extension configuration table, dumped by pg_dump.
SELECT count(*) > 0 AS has_config_table
  FROM pg_extension e, unnest(e.extconfig) c
 WHERE e.extname = 'finlive';

-- Missing columns (a dropped column is missing too).
CREATE TABLE j1 (LIKE jobs);
ALTER TABLE j1 DROP COLUMN started_at;
SELECT finlive_register('j1', 'runs');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE r1 (LIKE runs);
ALTER TABLE r1 DROP COLUMN exit_code;
SELECT finlive_register('jobs', 'r1');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE t1 (id bigint);
SELECT finlive_register('jobs', 'runs', 't1');
\echo SQLSTATE: :SQLSTATE

-- Wrong types.
CREATE TABLE j2 (LIKE jobs);
ALTER TABLE j2 ALTER COLUMN status TYPE integer USING 0;
SELECT finlive_register('j2', 'runs');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE j3 (LIKE jobs);
ALTER TABLE j3 ALTER COLUMN attempts TYPE bigint;
SELECT finlive_register('j3', 'runs');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE j4 (LIKE jobs);
ALTER TABLE j4 ALTER COLUMN started_at TYPE timestamp;
SELECT finlive_register('j4', 'runs');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE j5 (LIKE jobs);
ALTER TABLE j5 ALTER COLUMN id TYPE numeric;
SELECT finlive_register('j5', 'runs');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE j6 (LIKE jobs);
ALTER TABLE j6 ALTER COLUMN run_id TYPE smallint;
SELECT finlive_register('j6', 'runs');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE r2 (LIKE runs);
ALTER TABLE r2 ALTER COLUMN exit_code TYPE bigint;
SELECT finlive_register('jobs', 'r2');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE r3 (LIKE runs);
ALTER TABLE r3 ALTER COLUMN id TYPE text;
SELECT finlive_register('jobs', 'r3');
\echo SQLSTATE: :SQLSTATE
CREATE TABLE t2 (id bigint, stage integer);
SELECT finlive_register('jobs', 'runs', 't2');
\echo SQLSTATE: :SQLSTATE

-- The accepted alternatives: integer ids, varchar status and stage.
CREATE TABLE j7 (id integer, status varchar(10), run_id integer, task_id integer,
                 attempts integer, max_attempts integer, started_at timestamptz);
CREATE TABLE r4 (id integer, finished_at timestamptz, exit_code integer);
CREATE TABLE t3 (id integer, stage varchar);
CREATE INDEX ON j7 (status, id);
SELECT finlive_register('j7', 'r4', 't3');
SELECT jobs, runs, tasks FROM finlive_targets ORDER BY jobs::text;

-- Hooks with the wrong signature.
CREATE FUNCTION hook2(bigint, integer) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION hook3(integer, integer, text) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION gate2(bigint) RETURNS integer LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION gate3(integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION gate4(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SELECT finlive_register('jobs', 'runs', on_reap => 'hook2(bigint,integer)');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', on_reap => 'hook3(integer,integer,text)');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', gate => 'gate2(bigint)');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', gate => 'gate3(integer)');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', gate => 'gate4(bigint,bigint)');
\echo SQLSTATE: :SQLSTATE
-- A failed registration left the existing one alone.
SELECT jobs, runs, tasks, on_reap, gate, claim_owned FROM finlive_targets
 WHERE jobs = 'jobs'::regclass;

-- No such table; NULL tables.
SELECT finlive_register('no_such_jobs', 'runs');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register(NULL, 'runs');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', NULL);
\echo SQLSTATE: :SQLSTATE

-- [1.3] The policy arguments.
SET finlive.finalize_grace = 300;
SET finlive.claim_grace = 30;
SET finlive.max_running = 5400;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.enabled = on;
SET finlive.dry_run = off;
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '-1 second');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', 'tasks', claim_grace => '-1 second');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_register('jobs', 'runs', 'tasks', max_running => '-1 day');
\echo SQLSTATE: :SQLSTATE
-- The ceiling not above the grace (its own, or against the server's).
SELECT finlive_register('jobs', 'runs', 'tasks', max_running => '5 minutes');
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '2 hours');
-- A tasks table and an empty list: nothing can be guarded.
SELECT finlive_register('jobs', 'runs', 'tasks', guarded_stages => '{}');
-- No tasks table but '*': silent.
SELECT finlive_register('jobs', 'runs', guarded_stages => '{*}');
-- Every argument, as registered and in effect.
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '10 minutes',
                        claim_grace => '1 minute', max_running => '3 hours',
                        guarded_stages => '{deploy,review}', enabled => false,
                        dry_run => true);
\x on
SELECT finalize_grace, claim_grace, max_running, guarded_stages, enabled, dry_run,
       effective_finalize_grace, effective_claim_grace, effective_max_running,
       effective_guarded_stages, effective_enabled, effective_dry_run
  FROM finlive_targets WHERE jobs = 'jobs'::regclass;
\x off
-- NULL arguments: the server settings, read when the reaper runs.
SELECT finlive_register('jobs', 'runs', 'tasks');
\x on
SET finlive.finalize_grace = 600;
SET finlive.guarded_stages = 'a, b';
SELECT finalize_grace, claim_grace, max_running, guarded_stages, enabled, dry_run,
       effective_finalize_grace, effective_claim_grace, effective_max_running,
       effective_guarded_stages, effective_enabled, effective_dry_run
  FROM finlive_targets WHERE jobs = 'jobs'::regclass;
\x off
RESET finlive.finalize_grace;
RESET finlive.claim_grace;
RESET finlive.max_running;
RESET finlive.guarded_stages;
RESET finlive.enabled;
RESET finlive.dry_run;

-- Unregistering.
SELECT finlive_unregister('jobs') AS unregistered;
SELECT finlive_unregister('jobs') AS unregistered_again;
SELECT finlive_unregister('j1') AS never_registered;
SELECT finlive_unregister(NULL) AS null_target;
SELECT finlive_unregister('j7') AS unregistered;
SELECT count(*) AS targets_after FROM finlive_targets;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA regval CASCADE;
RESET client_min_messages;
