-- The reap row: a target in which one tick reaps :reap jobs.  :rows jobs
-- (one run and one task each); the running ones are every 10th id among
-- the newest :reap * 10, each with a run that ended 400 s ago with exit
-- code 0 in a stage nobody guards ('build'): past the 300 s grace, not
-- guarded, so a tick finalizes every one of them ('done', Tier-2).  Each
-- reap updates the job, calls the on_reap hook (which writes one row),
-- sends NOTIFY finlive_reaped and appends a log row.  bench_reap_reset()
-- puts the jobs back to running between ticks (outside the timing).
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
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
CREATE TABLE bench_hook_log (
    job_id bigint      NOT NULL,
    tier   integer     NOT NULL,
    status text        NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
-- the application's "advance the stage" step: one row per reap
CREATE FUNCTION bench_on_reap(p_job bigint, p_tier integer, p_status text) RETURNS void
LANGUAGE sql
AS $fn$
    INSERT INTO bench_hook_log (job_id, tier, status) VALUES (p_job, p_tier, p_status);
$fn$;

INSERT INTO tasks SELECT g, 'build' FROM generate_series(1, :rows) g;
INSERT INTO runs
SELECT g, now() - CASE WHEN g > :rows - :reap * 10 AND g % 10 = 0
                       THEN interval '400 s' ELSE interval '1 day' END, 0
  FROM generate_series(1, :rows) g;
INSERT INTO jobs (id, status, run_id, task_id, started_at, created_at, payload)
SELECT g,
       CASE WHEN g > :rows - :reap * 10 AND g % 10 = 0 THEN 'running' ELSE 'done' END,
       g, g, now() - interval '1000 s', now() - interval '1 day', md5(g::text)
  FROM generate_series(1, :rows) g;
CREATE INDEX jobs_running ON jobs (id) WHERE status = 'running';
CREATE TABLE bench_reap_set AS SELECT id FROM jobs WHERE status = 'running';
VACUUM ANALYZE tasks, runs, jobs;

SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'bench_on_reap(bigint,integer,text)'::regprocedure);

CREATE PROCEDURE bench_reap_reset()
LANGUAGE plpgsql
AS $fn$
BEGIN
    UPDATE jobs j SET status = 'running', attempts = 0
      FROM bench_reap_set s
     WHERE j.id = s.id AND j.status <> 'running';
    DELETE FROM bench_hook_log;
    DELETE FROM bench_reap_log;
    DELETE FROM finlive_reap_log;
END;
$fn$;
