-- Rule: a target whose table is dropped never stops the reaper: dropping any
-- of a target's tables (jobs, runs or tasks, directly or with its schema)
-- removes the target, a target whose hook was dropped is skipped with a
-- WARNING, and the other targets are reaped as before.  A target follows its
-- tables when they are renamed (it is kept by OID).  [1.2] The WARNING
-- names the target schema-qualified and is logged once when the target
-- becomes unusable (then at most once an hour), not at every tick.
CREATE SCHEMA tdrop;
SET search_path = tdrop, public;
SET finlive.finalize_grace = 300;
SET finlive.restart_grace = 0;
CREATE PROCEDURE make_target(name text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE tdrop.%I (id bigint, status text, run_id bigint,
                    task_id bigint, attempts integer, max_attempts integer,
                    started_at timestamptz)', name || '_jobs');
    EXECUTE format('CREATE INDEX ON tdrop.%I (status)', name || '_jobs');
    EXECUTE format('CREATE TABLE tdrop.%I (id bigint, finished_at timestamptz,
                    exit_code integer)', name || '_runs');
    EXECUTE format('CREATE TABLE tdrop.%I (id bigint, stage text)', name || '_tasks');
    EXECUTE format('INSERT INTO tdrop.%I VALUES (1, now() - interval ''10 minutes'', 0)',
                   name || '_runs');
    EXECUTE format('INSERT INTO tdrop.%I VALUES (1, ''testing'')', name || '_tasks');
    EXECUTE format('INSERT INTO tdrop.%I VALUES (1, ''running'', 1, 1, 0, 2,
                    now() - interval ''20 minutes'')', name || '_jobs');
    PERFORM finlive_register(format('tdrop.%I', name || '_jobs')::regclass,
                             format('tdrop.%I', name || '_runs')::regclass,
                             format('tdrop.%I', name || '_tasks')::regclass);
END
$$;
CALL make_target('a');
CALL make_target('b');
CALL make_target('c');
CALL make_target('d');
SELECT jobs, runs, tasks FROM finlive_targets ORDER BY jobs::text;

SET client_min_messages = warning;
DROP TABLE a_tasks;
DROP TABLE b_runs;
DROP TABLE c_jobs;
RESET client_min_messages;
SELECT jobs, runs, tasks FROM finlive_targets ORDER BY jobs::text;

ALTER TABLE d_jobs RENAME TO d_renamed_jobs;
SELECT jobs FROM finlive_targets ORDER BY jobs::text;

-- A target whose on_reap hook was dropped is skipped with a WARNING (its
-- jobs are left alone: a reap without its hook is not a reap); it stays
-- registered until it is registered again or removed.
CALL make_target('e');
CREATE FUNCTION e_hook(bigint, integer, text) RETURNS void LANGUAGE sql AS '';
SELECT finlive_register('e_jobs', 'e_runs', 'e_tasks',
                        on_reap => 'e_hook(bigint, integer, text)');
DROP FUNCTION e_hook(bigint, integer, text);
SELECT jobs, on_reap FROM finlive_targets ORDER BY jobs::text;

-- The tick reaps the other targets.
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
-- [1.2] The WARNING comes once when the target becomes unusable, not at
-- every tick.
SELECT count(*) AS second_tick_actions FROM finlive_reap_once();
SELECT (SELECT status FROM d_renamed_jobs) AS d_status,
       (SELECT status FROM e_jobs) AS e_status;
SELECT finlive_unregister('e_jobs') AS unregistered;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tdrop CASCADE;
RESET client_min_messages;
SELECT count(*) AS targets_left FROM finlive_targets;
