-- Rule: the reaper accepts every documented column type: integer or bigint
-- ids (jobs.id, run_id, task_id, runs.id, tasks.id), text or varchar
-- status and stage; any other columns are ignored.  All three tiers work on
-- such tables.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA coltypes;
SET search_path = coltypes, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE TABLE small_tasks (note text, id integer PRIMARY KEY, stage varchar(40));
CREATE TABLE small_runs (id integer PRIMARY KEY, exit_code integer,
                         finished_at timestamptz, host text);
CREATE TABLE small_jobs (
    started_at   timestamptz,
    max_attempts integer,
    attempts     integer,
    task_id      integer,
    run_id       integer,
    status       varchar(16),
    id           integer PRIMARY KEY,
    payload      jsonb
);

INSERT INTO small_tasks VALUES ('x', 1, 'deploy-staging'), ('y', 2, 'testing'),
                               ('z', 3, 'development'), ('w', 4, 'development');
INSERT INTO small_runs VALUES (1, 0, now() - interval '10 minutes', 'h'),
                              (2, 0, now() - interval '10 minutes', 'h'),
                              (3, NULL, NULL, 'h'), (4, NULL, NULL, 'h');
INSERT INTO small_jobs VALUES
    (now() - interval '20 minutes', 2, 0, 1, 1, 'running', 1, '{}'),
    (now() - interval '20 minutes', 2, 0, 2, 2, 'running', 2, '{}'),
    (now() - interval '5 minutes', 2, 0, 3, 3, 'running', 3, '{}'),
    (now() - interval '2 hours', 2, 1, 4, 4, 'running', 4, '{}');
CREATE INDEX ON small_jobs (status);
SELECT finlive_register('small_jobs', 'small_runs', 'small_tasks', claim_owned => true);
SELECT owner_mark(1) > 0 AS finalizer_of_1_alive;
SELECT owner_mark(4) > 0 AS stuck_owner_of_4;

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM small_jobs ORDER BY id;
:counters;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('small_jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA coltypes CASCADE;
RESET client_min_messages;
