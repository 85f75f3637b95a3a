-- Rule (reference TC-06): compatibility.  With the kill-switch off the
-- owner is ignored and the job is finalized exactly as before finlive (one
-- advance, no defer); a stage that is not guarded is never consulted, owner
-- or not; and within the finalize grace nothing changes and nothing counts
-- as a defer.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA tc06;
SET search_path = tc06, public;
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
-- The index finlive_register recommends for the reaper's candidate query.
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE PROCEDURE add_job(id bigint, stage text, exit_code integer,
                         finished_ago interval,
                         started_ago interval DEFAULT '20 minutes',
                         attempts integer DEFAULT 0,
                         max_attempts integer DEFAULT 2)
LANGUAGE sql AS $$
    INSERT INTO tc06.tasks VALUES (id, stage);
    INSERT INTO tc06.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO tc06.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
                                 now() - started_ago);
$$;
-- Every setting the reaper reads, pinned for this file.
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.restart_grace = 0;
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
