-- Rule [1.2] (nothing a hook sets outlives it): a gate, an on_reap hook or a
-- trigger of the status update that runs SET, set_config(..., false) or
-- SET LOCAL changes nothing for the session that ticked: after
-- finlive_reap_once() the caller's settings (search_path, work_mem,
-- finlive.*, anything) are exactly what they were, also after a hook that
-- failed; and what one target's hook sets never changes how the next target
-- (or the next job) is reaped.

-- The application's tables, in a schema of their own: two targets, a and b,
-- sharing runs and tasks.  add_job() inserts a running job of target a or b
-- with its task (in stage) and its run (ended finished_ago ago with
-- exit_code).
CREATE SCHEMA sec_set;
SET search_path = sec_set, public;
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
                         finished_ago interval)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_set.tasks VALUES (id, stage);
    INSERT INTO sec_set.runs VALUES (id, now() - finished_ago, exit_code);
    EXECUTE format('INSERT INTO sec_set.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - interval ''20 minutes'')',
                   'jobs_' || target) USING id;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

-- Hooks that change settings every way there is.  Each also makes the
-- reaper's own settings lie (dry run on, a grace of a day, nothing guarded):
-- were any of it to leak, the other target would not be reaped.
CREATE TABLE calls (job_id bigint, hook text, search_path text, work_mem text);
CREATE FUNCTION set_everything(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    SET search_path = pg_catalog;
    PERFORM set_config('work_mem', '77MB', false);
    PERFORM set_config('finlive.dry_run', 'on', false);
    PERFORM set_config('finlive.finalize_grace', '86400', false);
    SET LOCAL statement_timeout = '1min';
    SET finlive.guarded_stages = '';
    SET application_name = 'set by a hook';
    INSERT INTO sec_set.calls VALUES (job, 'on_reap', current_setting('search_path'),
                                      current_setting('work_mem'));
END
$$;
CREATE FUNCTION set_in_gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('search_path', 'nowhere, pg_catalog', false);
    SET work_mem = '11MB';
    SET LOCAL lock_timeout = '1s';
    PERFORM set_config('finlive.enabled', 'off', false);
    INSERT INTO sec_set.calls VALUES (job, 'gate', current_setting('search_path'),
                                      current_setting('work_mem'));
    RETURN true;
END
$$;
CREATE FUNCTION set_in_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('search_path', 'trigger_was_here', false);
    SET datestyle = 'German';
    INSERT INTO sec_set.calls VALUES (NEW.id, 'trigger', current_setting('search_path'),
                                      current_setting('work_mem'));
    RETURN NEW;
END
$$;
CREATE TRIGGER set_in_trigger AFTER UPDATE OF status ON jobs_b
    FOR EACH ROW EXECUTE FUNCTION set_in_trigger();
-- A hook that sets things and then fails.
CREATE FUNCTION set_then_fail(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('work_mem', '99MB', false);
    SET search_path = pg_catalog;
    RAISE EXCEPTION 'refusing job %', job;
END
$$;

SELECT finlive_register('jobs_a', 'runs', 'tasks',
                        on_reap => 'set_everything(bigint, integer, text)',
                        gate => 'set_in_gate(bigint)');
SELECT finlive_register('jobs_b', 'runs', 'tasks',
                        on_reap => 'set_everything(bigint, integer, text)',
                        gate => 'set_in_gate(bigint)');

-- Per target: one job to finalize, and one owned in a guarded stage that
-- must be deferred (were finlive.enabled or the guarded stages to leak, it
-- would be finalized).
CALL add_job('a', 1, 'testing', 0, '10 minutes');
CALL add_job('a', 2, 'deploy-staging', 0, '10 minutes');
CALL add_job('a', 3, 'testing', 0, '10 minutes');
CALL add_job('b', 11, 'testing', 0, '10 minutes');
CALL add_job('b', 12, 'deploy-staging', 0, '10 minutes');
CALL add_job('b', 13, 'testing', 0, '10 minutes');
SELECT owner_mark(2) > 0 AS owns_2, owner_mark(12) > 0 AS owns_12;

SET work_mem = '4MB';
SET datestyle = 'ISO, MDY';
SET application_name = 'the ticking session';
\set settings 'SELECT current_setting(''search_path'') AS search_path, current_setting(''work_mem'') AS work_mem, current_setting(''statement_timeout'') AS statement_timeout, current_setting(''lock_timeout'') AS lock_timeout, current_setting(''datestyle'') AS datestyle, current_setting(''application_name'') AS application_name'
\set finlive_settings 'SELECT current_setting(''finlive.enabled'') AS enabled, current_setting(''finlive.dry_run'') AS dry_run, current_setting(''finlive.finalize_grace'') AS finalize_grace, current_setting(''finlive.guarded_stages'') AS guarded_stages'
:settings;
:finlive_settings;

SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:settings;
:finlive_settings;
-- The hooks did run, and saw their own settings while they ran.
SELECT job_id, hook, search_path, work_mem FROM calls ORDER BY job_id, hook;
SELECT id, status FROM jobs_a UNION ALL SELECT id, status FROM jobs_b ORDER BY 1;
SELECT reaped_total, finalizer_defers_total AS defers, errors_total FROM finlive_stats;

-- Inside a transaction too, and with the settings made with SET LOCAL by
-- the caller: still exactly the caller's after the tick.
CALL add_job('a', 4, 'testing', 0, '10 minutes');
BEGIN;
SET LOCAL work_mem = '5MB';
SET LOCAL search_path = sec_set, public, pg_catalog;
SELECT * FROM finlive_reap_once() WHERE action <> 'deferred';
:settings;
COMMIT;
:settings;

-- A hook that fails after setting things: its job's error, nothing kept.
SELECT finlive_register('jobs_a', 'runs', 'tasks',
                        on_reap => 'set_then_fail(bigint, integer, text)');
CALL add_job('a', 5, 'testing', 0, '10 minutes');
SELECT * FROM finlive_reap_once() WHERE action <> 'deferred';
:settings;
SELECT id, status FROM jobs_a WHERE id = 5;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET work_mem;
RESET datestyle;
RESET application_name;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_set CASCADE;
RESET client_min_messages;
