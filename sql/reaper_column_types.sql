-- Rule: the reaper accepts every documented column type: integer or bigint
-- ids (jobs.id, run_id, task_id, runs.id, tasks.id), text or varchar
-- status and stage; any other columns are ignored.  All three tiers work on
-- such tables.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA coltypes;
SET search_path = coltypes, public;
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
    INSERT INTO coltypes.tasks VALUES (id, stage);
    INSERT INTO coltypes.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO coltypes.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
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
