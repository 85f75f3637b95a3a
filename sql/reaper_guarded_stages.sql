-- Rule: finlive.guarded_stages is a comma-separated list of stages whose live
-- finalizer the reaper must not pre-empt (default 'deploy-staging').  An owned
-- job past the finalize grace is deferred only when its task's stage is in
-- the list; '*' guards every job, also those of a target without a tasks
-- table; an empty list guards nothing.  [1.3] A target's own guarded_stages
-- (text[]) overrides the server's list for that target.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA guarded;
SET search_path = guarded, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks');
-- A second target without a tasks table.  [1.3] Under the default stages
-- none of its jobs can be guarded, and finlive_register says so (NOTICE);
-- only '*' guards them.
CREATE TABLE notask_jobs (LIKE jobs INCLUDING INDEXES);
SELECT finlive_register('notask_jobs', 'runs');

SET finlive.guarded_stages = 'review';
SHOW finlive.guarded_stages;
RESET finlive.guarded_stages;   -- back to the default
SHOW finlive.guarded_stages;

-- owned_jobs(first) ends the previous batch, then adds four jobs, all owned,
-- exited 0 and past the grace: first in deploy-staging, first + 1 in testing,
-- first + 2 in review, first + 3 in the target without tasks.
CREATE PROCEDURE owned_jobs(first bigint) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM owner_clear_all();
    UPDATE guarded.jobs SET status = 'done' WHERE status = 'running';
    UPDATE guarded.notask_jobs SET status = 'done' WHERE status = 'running';
    CALL guarded.add_job(first, 'deploy-staging', 0, '10 minutes');
    CALL guarded.add_job(first + 1, 'testing', 0, '10 minutes');
    CALL guarded.add_job(first + 2, 'review', 0, '10 minutes');
    INSERT INTO guarded.runs VALUES (first + 3, now() - interval '10 minutes', 0);
    INSERT INTO guarded.notask_jobs
        VALUES (first + 3, 'running', first + 3, NULL, 0, 2, now() - interval '20 minutes');
    PERFORM owner_mark(g) FROM generate_series(first, first + 3) g;
END
$$;

-- The default: deploy-staging only.
CALL owned_jobs(10);
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;

-- A list; blanks around the names do not matter.
SET finlive.guarded_stages = 'testing , deploy-staging';
CALL owned_jobs(20);
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;

-- '*' guards everything, a job without a task included.
SET finlive.guarded_stages = '*';
CALL owned_jobs(30);
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;

-- Empty: nothing is guarded.
SET finlive.guarded_stages = '';
CALL owned_jobs(40);
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
:counters;

-- [1.3] A target's own guarded_stages overrides the server's list (still
-- empty) for that target alone: here review for jobs, '*' for notask_jobs.
SELECT finlive_register('jobs', 'runs', 'tasks', guarded_stages => '{review}');
SELECT finlive_register('notask_jobs', 'runs', guarded_stages => '{*}');
SELECT jobs, guarded_stages, effective_guarded_stages FROM finlive_targets
 ORDER BY jobs::text;
CALL owned_jobs(50);
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
SELECT finlive_unregister('notask_jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA guarded CASCADE;
RESET client_min_messages;
