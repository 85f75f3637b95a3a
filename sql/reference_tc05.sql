-- Rule (reference TC-05, the ORCH-111 regression): a long deploy-staging
-- finalization, past the grace, while its finalizer is alive.  The reaper
-- must not re-run the advance: the task is not rolled back to development,
-- no developer run is started (the retry count stays 0), the job keeps
-- running and one defer is counted.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc05;
SET search_path = tc05, public;
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
    INSERT INTO tc05.advances VALUES (job_id, tier, status);
    UPDATE tc05.tasks SET stage = 'development'
     WHERE id = (SELECT task_id FROM tc05.jobs WHERE id = job_id);
    INSERT INTO tc05.runs VALUES (1000 + job_id, NULL, NULL);
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');
CREATE VIEW developer_retries AS
    SELECT count(*) AS retries FROM runs WHERE id > 1000;

CALL add_job(1, 'deploy-staging', 0, '1500 seconds');
SELECT owner_mark(1, 11, 'deploy-staging') > 0 AS finalizer_alive;
SELECT * FROM finlive_reap_once();
SELECT id, stage FROM tasks;
SELECT retries FROM developer_retries;
SELECT id, status FROM jobs;
:counters;

-- Before finlive (kill-switch off) the same tick is the incident.
SET finlive.enabled = off;
SELECT * FROM finlive_reap_once();
SELECT id, stage FROM tasks;
SELECT retries FROM developer_retries;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc05 CASCADE;
RESET client_min_messages;
