-- Rule: every reap appends one row to finlive_reap_log, in the reap's
-- transaction: at, target, job_id, tier, old_status, new_status, owner_pid
-- (the pid of the session that owned the job, NULL when none) and dry_run.
-- A defer writes no row; a rolled-back tick leaves none.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA reaplog;
SET search_path = reaplog, public;
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
    INSERT INTO reaplog.tasks VALUES (id, stage);
    INSERT INTO reaplog.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO reaplog.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
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
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);
\d finlive_reap_log

CALL add_job(1, 'testing', 0, '10 minutes');                   -- Tier-2 done
CALL add_job(2, 'deploy-staging', 0, '10 minutes', '11 minutes'); -- deferred
SELECT owner_mark(2) > 0 AS finalizer_of_2_alive;
CALL add_job(3, 'development', NULL, NULL, '5 minutes');       -- Tier-1 queued
CALL add_job(4, 'development', NULL, NULL, '2000 seconds', attempts => 2);
SELECT owner_mark(4) > 0 AS stuck_owner_of_4;                -- Tier-3 failed

BEGIN;
SELECT count(*) AS actions FROM finlive_reap_once();
ROLLBACK;
SELECT count(*) AS log_rows_after_rollback
  FROM finlive_reap_log WHERE target = 'jobs'::regclass;

BEGIN;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT target, job_id, tier, old_status, new_status,
       owner_pid = owner_pid() AS owner_is_owner, owner_pid IS NULL AS no_owner,
       dry_run, at BETWEEN now() AND clock_timestamp() AS at_this_tick
  FROM finlive_reap_log WHERE target = 'jobs'::regclass ORDER BY job_id;
COMMIT;
SELECT count(*) AS log_rows FROM finlive_reap_log WHERE target = 'jobs'::regclass;
DELETE FROM finlive_reap_log WHERE target = 'jobs'::regclass;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA reaplog CASCADE;
RESET client_min_messages;
