-- Rule: for finlive.restart_grace after the server started, owners may still
-- be reconnecting, so the reaper makes no reap that depends on ownership
-- being absent: no Tier-1 and no Tier-2 of a job in a guarded stage; it
-- leaves those jobs running.  Tier-2 of unguarded stages and Tier-3 still
-- apply.  (The suite's server started moments ago, so a window of a day is
-- open; 0 closes it.)

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA restartgrace;
SET search_path = restartgrace, public;
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
    INSERT INTO restartgrace.tasks VALUES (id, stage);
    INSERT INTO restartgrace.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO restartgrace.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
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
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);
SET finlive.restart_grace = 86400;
SHOW finlive.restart_grace;

CALL add_job(1, 'development', NULL, NULL, '5 minutes');   -- Tier-1 candidate
CALL add_job(2, 'deploy-staging', 0, '10 minutes');        -- guarded, no owner
CALL add_job(3, 'testing', 0, '10 minutes');               -- unguarded Tier-2
CALL add_job(4, 'development', NULL, NULL, '2 hours');     -- Tier-3

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs ORDER BY id;

-- The window closed: the jobs it held are reaped.
SET finlive.restart_grace = 0;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs ORDER BY id;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA restartgrace CASCADE;
RESET client_min_messages;
