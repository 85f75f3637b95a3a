-- Rule (reference TC-01): a live finalizer on deploy-staging is not
-- reaped.  The run exited 0 and finished past the finalize grace, but its
-- finalizer session still owns the job: the tick defers it -- no advance, the
-- job stays running, finalizer_defers_total is 1 and nothing is reaped.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc01;
SET search_path = tc01, public;
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
    INSERT INTO tc01.advances VALUES (job_id, tier, status);
    UPDATE tc01.tasks SET stage = 'development'
     WHERE id = (SELECT task_id FROM tc01.jobs WHERE id = job_id);
    INSERT INTO tc01.runs VALUES (1000 + job_id, NULL, NULL);
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');

CALL add_job(1, 'deploy-staging', 0, '600 seconds');
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS finalizer_alive;
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs;
SELECT count(*) AS advances FROM advances;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc01 CASCADE;
RESET client_min_messages;
