-- A tick may reap any number of jobs: what one job's reap allocates (its
-- rows, its statements, a SQL-language hook's parsed body, the job's own
-- subtransaction) is given back when that job is done, so the memory of
-- the ticking session does not grow with the number of jobs a tick reaps.
-- The on_reap hook below, a plain SQL function, writes down how much memory
-- the session has at each call: from the 100th job to the 400th it must not
-- grow by more than a few kilobytes per job (the NOTIFYs queued for commit).
-- finlive 1.3.0 kept about 57 kB per reaped job until the tick ended.

CREATE SCHEMA tick_mem;
SET search_path = tick_mem, public;
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
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE TABLE hook_calls (
    n      bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    bytes  bigint NOT NULL
);
CREATE FUNCTION on_reap(job_id bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO hook_calls (job_id, bytes)
    SELECT job_id, sum(total_bytes) FROM pg_backend_memory_contexts;
$$;
-- 400 running jobs whose run ended with exit code 0 ten minutes ago, in a
-- stage nobody guards: each is finalized ('done', Tier 2) by one tick.
INSERT INTO tasks SELECT g, 'build' FROM generate_series(1, 400) g;
INSERT INTO runs SELECT g, now() - interval '10 minutes', 0 FROM generate_series(1, 400) g;
INSERT INTO jobs SELECT g, 'running', g, g, 0, 2, now() - interval '20 minutes'
  FROM generate_series(1, 400) g;
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.restart_grace = 0;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'tick_mem.on_reap(bigint,integer,text)'::regprocedure);

SELECT count(*) AS reaped, count(*) FILTER (WHERE action = 'done') AS done
  FROM finlive_reap_once();
SELECT count(*) AS hook_calls FROM hook_calls;
SELECT (SELECT bytes FROM hook_calls WHERE n = 400)
       - (SELECT bytes FROM hook_calls WHERE n = 100) < 300 * 4096
       AS memory_bounded_per_job;

-- Clean up.
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tick_mem CASCADE;
RESET client_min_messages;
