-- Rule (reference TC-03): a genuinely dead finalizer is still reaped.
-- Without an owner, a deploy-staging job whose run exited 0 past the grace is
-- finalized by Tier-2 ('done', one advance, no defer).  And the Tier-3
-- backstop ignores ownership: a job past finlive.max_running is requeued
-- even though its finalizer still owns it.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc03;
SET search_path = tc03, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
-- The advance step is the on_reap hook: it records its call and, like the
-- incident's second advance, rolls the task back to 'development' and starts a
-- developer run.
CREATE TABLE advances (job_id bigint, tier integer, status text);
CREATE FUNCTION advance(job_id bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tc03.advances VALUES (job_id, tier, status);
    UPDATE tc03.tasks SET stage = 'development'
     WHERE id = (SELECT task_id FROM tc03.jobs WHERE id = job_id);
    INSERT INTO tc03.runs VALUES (1000 + job_id, NULL, NULL);
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');

-- The dead finalizer: nobody owns job 1.
CALL add_job(1, 'deploy-staging', 0, '600 seconds');
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs WHERE id = 1;
SELECT job_id, tier, status FROM advances;
:counters;

-- The backstop: a stuck finalizer of job 2 owns it, its run ended within the
-- grace, but the job has run past max_running.
SET finlive.max_running = 1000;
CALL add_job(2, 'deploy-staging', 0, '10 seconds', '2000 seconds');
SELECT owner_mark(2, 3, 'deploy-staging') > 0 AS stuck_finalizer;
SELECT * FROM finlive_reap_once();
SELECT id, status, attempts FROM jobs WHERE id = 2;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc03 CASCADE;
RESET client_min_messages;
