-- Rule (reference TC-02): strict ownership.  While a live finalizer owns
-- the job, repeated reaper ticks perform no side effect at all: no advance,
-- no status change, no log row, one defer per tick.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc02;
SET search_path = tc02, public;
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
    INSERT INTO tc02.advances VALUES (job_id, tier, status);
    UPDATE tc02.tasks SET stage = 'development'
     WHERE id = (SELECT task_id FROM tc02.jobs WHERE id = job_id);
    INSERT INTO tc02.runs VALUES (1000 + job_id, NULL, NULL);
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');

CALL add_job(1, 'deploy-staging', 0, '900 seconds');
SELECT owner_mark(1, 7, 'deploy-staging') > 0 AS finalizer_alive;
SELECT * FROM finlive_reap_once();
SELECT * FROM finlive_reap_once();
SELECT * FROM finlive_reap_once();
SELECT id, status, attempts FROM jobs;
SELECT count(*) AS advances FROM advances;
SELECT count(*) AS log_rows FROM finlive_reap_log WHERE target = 'jobs'::regclass;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc02 CASCADE;
RESET client_min_messages;
