-- Rule [1.3] (a policy per target: claim_grace): finlive_register's
-- claim_grace argument, NULL by default, means the server setting
-- finlive.claim_grace; a value overrides it for that target alone.  Two
-- claim_owned targets side by side: a (NULL) requeues an unowned job whose
-- run has not finished once the server's grace has passed since started_at,
-- b (its own grace) by its own.
-- The application's tables, in a schema of their own: two targets, jobs_a
-- and jobs_b, side by side, sharing runs and tasks.  add_job() inserts a
-- running job of either with its task (in stage) and its run (ended
-- finished_ago ago with exit_code; both NULL while the run is still going),
-- started started_ago ago.
CREATE SCHEMA pol_cg;
SET search_path = pol_cg, public;
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
    INSERT INTO pol_cg.tasks VALUES (id, stage);
    INSERT INTO pol_cg.runs VALUES (id, now() - finished_ago, exit_code);
    EXECUTE format('INSERT INTO pol_cg.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - $2)',
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

SELECT finlive_register('jobs_a', 'runs', 'tasks', claim_owned => true);
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true,
                        claim_grace => '10 minutes');
\set policy 'SELECT jobs, claim_grace, effective_claim_grace FROM finlive_targets ORDER BY jobs::text'
:policy;

-- Started two minutes ago, nobody owns them: past a's 30 s, within b's 10
-- minutes.  Owned ones are left alone by both.
CALL add_job('a', 1, 'development', NULL, NULL, '2 minutes');
CALL add_job('b', 11, 'development', NULL, NULL, '2 minutes');
CALL add_job('a', 2, 'development', NULL, NULL, '2 minutes');
CALL add_job('b', 12, 'development', NULL, NULL, '20 minutes');
SELECT owner_mark(2) > 0 AS owns_2, owner_mark(12) > 0 AS owns_12;
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- The server's grace lengthened to an hour: a follows, b keeps 10 minutes.
SET finlive.claim_grace = 3600;
:policy;
CALL add_job('a', 3, 'development', NULL, NULL, '20 minutes');
CALL add_job('b', 13, 'development', NULL, NULL, '20 minutes');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;
:jobs;

-- b's grace boundary: exactly 10 minutes after started_at is past it.
BEGIN;
CALL add_job('b', 14, 'development', NULL, NULL, '10 minutes');
CALL add_job('b', 15, 'development', NULL, NULL, '9 minutes 59.999999 seconds');
SELECT * FROM finlive_reap_once() WHERE job_id IN (14, 15) ORDER BY job_id;
COMMIT;

-- b with a zero grace: any unowned claimed job is requeued at once.
SELECT finlive_register('jobs_b', 'runs', 'tasks', claim_owned => true, claim_grace => '0');
:policy;
CALL add_job('b', 16, 'development', NULL, NULL, '0');
SELECT * FROM finlive_reap_once() ORDER BY target::text, job_id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs_a') AS unregistered_a,
       finlive_unregister('jobs_b') AS unregistered_b;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pol_cg CASCADE;
RESET client_min_messages;
