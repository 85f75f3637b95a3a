-- Rule (reference TC-06): compatibility.  With the kill-switch off the
-- owner is ignored and the job is finalized exactly as before finlive (one
-- advance, no defer); a stage that is not guarded is never consulted, owner
-- or not; and within the finalize grace nothing changes and nothing counts
-- as a defer.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc06;
SET search_path = tc06, public;
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
    INSERT INTO tc06.advances VALUES (job_id, tier, status);
    UPDATE tc06.tasks SET stage = 'development'
     WHERE id = (SELECT task_id FROM tc06.jobs WHERE id = job_id);
    INSERT INTO tc06.runs VALUES (1000 + job_id, NULL, NULL);
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');

-- Kill-switch off.
SET finlive.enabled = off;
CALL add_job(1, 'deploy-staging', 0, '600 seconds');
SELECT owner_mark(1, 5, 'deploy-staging') > 0 AS finalizer_alive;
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs WHERE id = 1;
SELECT job_id, tier, status FROM advances;
:counters;
SET finlive.enabled = on;

-- A stage that is not guarded, with an irrelevant owner.
CALL add_job(2, 'testing', 0, '600 seconds');
SELECT owner_mark(2, 6, 'testing') > 0 AS owner_present;
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs WHERE id = 2;
SELECT job_id, tier, status FROM advances ORDER BY job_id;
:counters;

-- Within the grace: untouched, and not a defer.
CALL add_job(3, 'deploy-staging', 0, '5 seconds');
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs WHERE id = 3;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc06 CASCADE;
RESET client_min_messages;
