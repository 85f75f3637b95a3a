-- Rule: finlive_stats() and the view finlive_stats return one row of
-- cluster-wide counters, counted by finlive_reap_once as by the worker:
-- ticks, jobs_examined (running jobs some tier could act on), reaped_total
-- and per tier,
-- finalizer_defers_total, errors_total, owners_active (live owners now),
-- last_tick_at, last_tick_ms.  finlive_stats_reset() zeroes the counters;
-- owners_active keeps counting the owners that are still live.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA stats;
SET search_path = stats, public;
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
    INSERT INTO stats.tasks VALUES (id, stage);
    INSERT INTO stats.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO stats.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
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
\d finlive_stats
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);

SELECT ticks, jobs_examined, reaped_total, reaped_tier1, reaped_tier2,
       reaped_tier3, finalizer_defers_total, errors_total, owners_active
  FROM finlive_stats;

CALL add_job(1, 'testing', 0, '10 minutes');                -- Tier-2
CALL add_job(2, 'development', NULL, NULL, '5 minutes');    -- Tier-1
CALL add_job(3, 'development', NULL, NULL, '2 hours');      -- Tier-3
CALL add_job(4, 'deploy-staging', 0, '10 minutes');         -- deferred
CALL add_job(5, 'testing', 0, '1 minute');                  -- left alone
CALL add_job(6, 'testing', 0, '10 minutes');
UPDATE jobs SET status = 'done' WHERE id = 6;                -- not running
SELECT owner_mark(4) > 0 AS finalizer_of_4_alive;
SELECT owner_mark(100) > 0 AS another_owner;

SELECT count(*) AS actions FROM finlive_reap_once();
SELECT ticks, jobs_examined, reaped_total, reaped_tier1, reaped_tier2,
       reaped_tier3, finalizer_defers_total, errors_total, owners_active,
       last_tick_at BETWEEN now() - interval '1 minute' AND clock_timestamp()
           AS last_tick_recent,
       last_tick_ms >= 0 AS last_tick_ms_ok
  FROM finlive_stats;

SELECT count(*) AS actions FROM finlive_reap_once();
SELECT ticks, jobs_examined, reaped_total, finalizer_defers_total
  FROM finlive_stats;

-- The view and the function agree; the snapshot carries the same counters.
SELECT (SELECT row(s.*)::text FROM finlive_stats s)
     = (SELECT row(f.*)::text FROM finlive_stats() f) AS view_matches;
SELECT (finlive_snapshot() ->> 'reaped_total')::bigint AS snapshot_reaped,
       (finlive_snapshot() ->> 'finalizer_defers_total')::bigint AS snapshot_defers;

SELECT finlive_stats_reset();
SELECT ticks, jobs_examined, reaped_total, reaped_tier1, reaped_tier2,
       reaped_tier3, finalizer_defers_total, errors_total, owners_active
  FROM finlive_stats;
SELECT owner_clear(100) AS cleared;
SELECT owners_active FROM finlive_stats;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA stats CASCADE;
RESET client_min_messages;
