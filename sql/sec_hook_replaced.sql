-- Rule [1.2]: a hook is the very function that was registered.  If it is
-- dropped or renamed, the target is unusable until it is registered again:
-- the reaper skips it (one WARNING when it becomes unusable, not one per
-- tick), finlive_target_problems and finlive_audit (broken_target) say why,
-- and a function created later under the same name -- by anyone, in any
-- schema, pg_temp included -- is never called.  Registering again binds the
-- function the signature names now, and the target is reaped again.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code).
CREATE SCHEMA sec_replaced;
SET search_path = sec_replaced, public;
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
CREATE TABLE gated_jobs (LIKE jobs INCLUDING ALL);
CREATE PROCEDURE add_job(id bigint, target text DEFAULT 'jobs')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_replaced.tasks VALUES (id, 'testing');
    INSERT INTO sec_replaced.runs VALUES (id, now() - interval '10 minutes', 0);
    EXECUTE format('INSERT INTO sec_replaced.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - interval ''20 minutes'')',
                   target) USING id;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();

CREATE TABLE calls (job_id bigint, called text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO sec_replaced.calls VALUES (job, 'the registered advance') $$;
CREATE FUNCTION green(job bigint) RETURNS boolean
LANGUAGE sql AS $$ INSERT INTO sec_replaced.calls VALUES (job, 'the registered green') RETURNING true $$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');
SELECT finlive_register('gated_jobs', 'runs', 'tasks',
                        gate => 'green(bigint)');
CALL add_job(1);
CALL add_job(11, 'gated_jobs');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM calls ORDER BY job_id;

-- on_reap is dropped, and a function of the same name and signature takes
-- its place; the gate is renamed, and another takes its name.
DROP FUNCTION advance(bigint, integer, text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO sec_replaced.calls VALUES (job, 'an impostor advance') $$;
ALTER FUNCTION green(bigint) RENAME TO green_old;
CREATE FUNCTION green(job bigint) RETURNS boolean
LANGUAGE sql AS $$ INSERT INTO sec_replaced.calls VALUES (job, 'an impostor green') RETURNING true $$;
CALL add_job(2);
CALL add_job(12, 'gated_jobs');

SELECT * FROM finlive_target_problems() ORDER BY target::text;
SELECT reason, target, detail FROM finlive_audit() WHERE reason = 'broken_target'
 ORDER BY target::text;
-- Skipped, with one WARNING each; a second tick warns no more.
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT id, status FROM jobs UNION ALL SELECT id, status FROM gated_jobs ORDER BY 1;
SELECT * FROM calls WHERE called LIKE '%impostor%';

-- Nor does one in pg_temp: a temporary function under the hook's old name
-- (pg_temp is on every hook's path) is never called either.
CREATE FUNCTION pg_temp.advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO sec_replaced.calls VALUES (job, 'a temporary impostor') $$;
DROP FUNCTION sec_replaced.advance(bigint, integer, text);
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM calls WHERE called LIKE '%impostor%';
SELECT id, status FROM jobs WHERE id = 2;

-- Renaming the gate back does not make the target usable again: a hook
-- once found renamed is recorded as lost (so that no pg_dump or pg_upgrade
-- can bind a function created later under its name), until the target is
-- registered again.
DROP FUNCTION green(bigint);
ALTER FUNCTION green_old(bigint) RENAME TO green;
SELECT * FROM finlive_target_problems() ORDER BY target::text;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM calls WHERE job_id = 12;

-- Registering again binds the function the signature names now.
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO sec_replaced.calls VALUES (job, 'the advance registered again') $$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');
SELECT finlive_register('gated_jobs', 'runs', 'tasks', gate => 'green(bigint)');
SELECT count(*) AS problems FROM finlive_target_problems();
SELECT count(*) AS broken FROM finlive_audit() WHERE reason = 'broken_target';
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
SELECT * FROM calls WHERE job_id = 2;
SELECT id, status FROM jobs UNION ALL SELECT id, status FROM gated_jobs ORDER BY 1;

-- Clean up.
SELECT finlive_unregister('jobs') AS unregistered,
       finlive_unregister('gated_jobs') AS unregistered_gated;
DROP FUNCTION pg_temp.advance(bigint, integer, text);
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_replaced CASCADE;
RESET client_min_messages;
