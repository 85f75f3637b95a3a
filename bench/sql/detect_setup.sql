-- Row 5: a small target in the database the worker reaps.  Each trial adds
-- one job whose run ended 400 s ago with exit code 0 in the guarded stage,
-- owned by a live finalizer session: past the 300 s grace, so it is
-- deferred until that session dies.
\set ON_ERROR_STOP 1
CREATE TABLE det_tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE det_runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE det_jobs (
    id           bigint  PRIMARY KEY,
    status       text    NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    started_at   timestamptz
);
CREATE INDEX det_jobs_running ON det_jobs (id) WHERE status = 'running';
SELECT finlive_register('det_jobs', 'det_runs', 'det_tasks');

-- Terminate the owner and wait, polling every 2 ms inside the server, until
-- the job's status changes.  Every statement of a volatile PL/pgSQL
-- function takes a new snapshot, so the poll sees the worker's commit.
-- t0 is read before the signal is sent: the figure includes its delivery.
CREATE FUNCTION bench_detect(p_owner integer, p_job bigint,
                             OUT seen_ms float8, OUT log_ms float8,
                             OUT tick_ms float8, OUT new_status text)
LANGUAGE plpgsql
AS $fn$
DECLARE
    t0 timestamptz;
    t_log timestamptz;
BEGIN
    t0 := clock_timestamp();
    PERFORM pg_terminate_backend(p_owner);
    LOOP
        SELECT j.status INTO new_status FROM det_jobs j WHERE j.id = p_job;
        EXIT WHEN new_status <> 'running';
        IF clock_timestamp() - t0 > interval '30 s' THEN
            RETURN;                     -- seen_ms stays NULL: missed
        END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
    seen_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    SELECT max(l.at) INTO t_log
      FROM finlive_reap_log l
     WHERE l.target = 'det_jobs'::regclass AND l.job_id = p_job;
    log_ms := extract(epoch FROM t_log - t0) * 1000;
    SELECT s.last_tick_ms INTO tick_ms FROM finlive_stats() s;
END;
$fn$;
