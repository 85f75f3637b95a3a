-- Rule (Tier-3, backstop): a job still running after Tiers 2 and 1 whose age
-- (now() - started_at) is at least finlive.max_running is requeued or
-- failed, whatever its ownership, its run or the stage: a stuck finalizer is
-- never immortal.  A job that Tier-2 already finalized is not reaped again.
-- [1.3] A target's own max_running overrides the server setting for it.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA tier3;
SET search_path = tier3, public;
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
    INSERT INTO tier3.tasks VALUES (id, stage);
    INSERT INTO tier3.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO tier3.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
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
SET finlive.max_running = 1000;
SELECT finlive_register('jobs', 'runs', 'tasks');

-- Owned, guarded, run finished within the finalize grace (Tier-2 leaves it).
CALL add_job(1, 'deploy-staging', 0, '10 seconds', '2000 seconds');
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS finalizer_of_1_alive;
-- Owned, guarded, past the grace (Tier-2 defers it), past the ceiling.
CALL add_job(2, 'deploy-staging', 0, '10 minutes', '2000 seconds');
SELECT owner_mark(2, 2, 'deploy-staging') > 0 AS finalizer_of_2_alive;
-- Run still going, no retries left.
CALL add_job(3, 'development', NULL, NULL, '2000 seconds', attempts => 2);
-- No run at all.
CALL add_job(4, 'development', NULL, NULL, '2000 seconds');
UPDATE jobs SET run_id = NULL WHERE id = 4;
-- Past the ceiling but finalized by Tier-2 first: one reap, tier 2.
CALL add_job(5, 'testing', 0, '10 minutes', '2000 seconds');
-- Below the ceiling: untouched.
CALL add_job(6, 'development', NULL, NULL, '900 seconds');

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT finlive_is_active(1) AS owner_of_1_still_owns;
SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, errors_total
  FROM finlive_stats;

-- The ceiling boundary: age = max_running is reaped.
BEGIN;
CALL add_job(7, 'development', NULL, NULL, '1000 seconds');
CALL add_job(8, 'development', NULL, NULL, '999.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (7, 8) ORDER BY id;

-- [1.3] A target's own max_running overrides the server's for it alone.
SELECT finlive_register('jobs', 'runs', 'tasks', max_running => '2 hours');
BEGIN;
CALL add_job(9, 'development', NULL, NULL, '7200 seconds');
CALL add_job(10, 'development', NULL, NULL, '7199.999999 seconds');
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
COMMIT;
SELECT id, status FROM jobs WHERE id IN (8, 9, 10) ORDER BY id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tier3 CASCADE;
RESET client_min_messages;
