-- The application's tables for the tick rows, in the shape the
-- contract requires: :rows jobs, one run and one task per job.  The 10,000
-- running jobs are every 10th id among the newest 100,000, so the 100,000-
-- and 1,000,000-row tables differ only in how many finished jobs lie before
-- them.  Every 100th id (1,000 jobs, 10%) ended its run 400 s ago with
-- exit code 0 in the guarded stage: past the 300 s finalize grace, and its
-- finalizer (the holder session) is alive, so a tick must defer it.  The
-- other 9,000 are running with no exit code, well within every grace: no
-- action.  A partial index serves "status = 'running'".
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
CREATE TABLE tasks (
    id    bigint PRIMARY KEY,
    stage text   NOT NULL
);
CREATE TABLE runs (
    id          bigint PRIMARY KEY,
    finished_at timestamptz,
    exit_code   integer
);
CREATE TABLE jobs (
    id           bigint      PRIMARY KEY,
    status       text        NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL DEFAULT 3,
    started_at   timestamptz,
    created_at   timestamptz NOT NULL,
    payload      text
);

-- g > :rows - 100000 AND g % 10 = 0: running;  g % 100 = 0 among those: owned
INSERT INTO tasks
SELECT g, CASE WHEN g % 100 = 0 THEN 'deploy-staging' ELSE 'build' END
  FROM generate_series(1, :rows) g;
INSERT INTO runs
SELECT g,
       CASE WHEN g > :rows - 100000 AND g % 10 = 0
            THEN CASE WHEN g % 100 = 0 THEN now() - interval '400 s' END
            ELSE now() - interval '1 day' END,
       CASE WHEN g > :rows - 100000 AND g % 10 = 0
            THEN CASE WHEN g % 100 = 0 THEN 0 END
            ELSE 0 END
  FROM generate_series(1, :rows) g;
INSERT INTO jobs (id, status, run_id, task_id, started_at, created_at, payload)
SELECT g,
       CASE WHEN g > :rows - 100000 AND g % 10 = 0 THEN 'running' ELSE 'done' END,
       g, g,
       CASE WHEN g > :rows - 100000 AND g % 10 = 0 AND g % 100 = 0
            THEN now() - interval '1000 s'
            WHEN g > :rows - 100000 AND g % 10 = 0 THEN now()
            ELSE now() - interval '1 day' END,
       now() - interval '1 day',
       md5(g::text)
  FROM generate_series(1, :rows) g;
CREATE INDEX jobs_running ON jobs (id) WHERE status = 'running';
VACUUM ANALYZE tasks, runs, jobs;

SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true);
