-- Rule (reference TC-07): the budget invariant.  finlive changes neither
-- the finalize grace nor the ceiling: the defaults are 300 s and 5400 s, and
-- the Tier-3 ceiling stays above the grace, so a guarded job is always
-- deferred for a while and then always reaped in bounded time.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA tc07;
SET search_path = tc07, public;
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
    INSERT INTO tc07.tasks VALUES (id, stage);
    INSERT INTO tc07.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO tc07.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
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
RESET finlive.finalize_grace;
RESET finlive.max_running;
SHOW finlive.finalize_grace;
SHOW finlive.max_running;
SELECT current_setting('finlive.max_running')::interval
     > current_setting('finlive.finalize_grace')::interval AS ceiling_above_grace;
SELECT finlive_register('jobs', 'runs', 'tasks');

-- With the defaults, an owned guarded job 10 minutes past its run is
-- deferred; 90 minutes after it started, it is reaped all the same.
CALL add_job(1, 'deploy-staging', 0, '10 minutes', '60 minutes');
CALL add_job(2, 'deploy-staging', 0, '10 minutes', '90 minutes');
SELECT owner_mark(1) > 0 AS owns_1, owner_mark(2) > 0 AS owns_2;
SELECT * FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT id, status FROM jobs ORDER BY id;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tc07 CASCADE;
RESET client_min_messages;
