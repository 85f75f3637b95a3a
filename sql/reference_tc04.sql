-- Rule (reference TC-04): idempotency under a race.  While the finalizer
-- owns the job, five reaper ticks never run the advance, so the task is never
-- rolled back and the finalizer stays the only driver of the job; when it
-- finishes (guarded by its fencing token) the reaper finds nothing to do.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tc04;
SET search_path = tc04, public;
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
    INSERT INTO tc04.advances VALUES (job_id, tier, status);
    UPDATE tc04.tasks SET stage = 'development'
     WHERE id = (SELECT task_id FROM tc04.jobs WHERE id = job_id);
    INSERT INTO tc04.runs VALUES (1000 + job_id, NULL, NULL);
END
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');

CALL add_job(1, 'deploy-staging', 0, '1200 seconds');
-- The finalizer is a session of its own (a session that owns jobs may not
-- tick).
SELECT owner_mark(1, 9, 'deploy-staging') AS tok \gset
SELECT count(*) AS actions FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT count(*) AS actions FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT count(*) AS actions FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT count(*) AS actions FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT count(*) AS actions FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT count(*) AS advances FROM advances;
SELECT id, stage FROM tasks;

-- The finalizer completes its own work in its session, guarded by its token,
-- then releases.
SELECT owner_sql(format($$UPDATE tc04.jobs SET status = 'done'
                           WHERE id = 1 AND public.finlive_fence(1, %s)
                       RETURNING id || ': ' || status$$, :tok)) AS finalizer_wrote;
SELECT owner_clear(1) AS released;
SELECT * FROM finlive_reap_once();
SELECT id, status FROM jobs;
SELECT count(*) AS advances FROM advances;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc04 CASCADE;
RESET client_min_messages;
