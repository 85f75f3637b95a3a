-- The detection rows: a target in a database of its own, reaped by its own
-- reaper at the default naptime.  Each trial adds one job whose run ended
-- 400 s ago with exit code 0 in the guarded stage, owned by a live
-- finalizer session: past the 300 s grace, so it is deferred until that
-- session dies.  (detect_fill.sql adds 100,000 other running jobs.)
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
    started_at   timestamptz,
    reaped_at    timestamptz            -- set by the trigger below
);
CREATE INDEX det_jobs_running ON det_jobs (id) WHERE status = 'running';
SELECT finlive_register('det_jobs', 'det_runs', 'det_tasks');

-- When, inside the reaping transaction, the job's row was changed (the
-- application's own trigger, run by the reaper's UPDATE): splits the delay
-- into the wake-up, the reap, and its commit becoming visible.
CREATE FUNCTION det_jobs_reaped_at() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF NEW.status <> OLD.status THEN
        NEW.reaped_at := clock_timestamp();
    END IF;
    RETURN NEW;
END;
$fn$;
CREATE TRIGGER det_jobs_reaped_at BEFORE UPDATE ON det_jobs
    FOR EACH ROW EXECUTE FUNCTION det_jobs_reaped_at();

-- One trial's job, owned by the session that calls finlive_mark next.
CREATE PROCEDURE bench_detect_job(p_job bigint)
LANGUAGE sql
AS $fn$
    INSERT INTO det_tasks VALUES (p_job, 'deploy-staging');
    INSERT INTO det_runs VALUES (p_job, now() - interval '400 s', 0);
    INSERT INTO det_jobs (id, status, run_id, task_id, started_at)
    VALUES (p_job, 'running', p_job, p_job, now() - interval '1000 s');
$fn$;

-- Terminate the owner and poll the job's status until it changes, inside
-- the server: with p_poll_ms = 0 continuously (each poll is one index
-- lookup, a few microseconds), else every p_poll_ms.  Every statement of a
-- volatile PL/pgSQL function takes a new snapshot, so a poll sees the
-- reaper's commit.  t0 is read before the signal is sent: the figure
-- includes its delivery and the owner's exit.  log_ms: when the reaping
-- transaction started (finlive_reap_log.at), upd_ms: when it changed the
-- row (the trigger), both from the same t0.
CREATE FUNCTION bench_detect(p_owner integer, p_job bigint, p_poll_ms float8 DEFAULT 0,
                             OUT seen_ms float8, OUT log_ms float8,
                             OUT polls bigint, OUT new_status text,
                             OUT upd_ms float8)
LANGUAGE plpgsql
AS $fn$
DECLARE
    t0 timestamptz;
    t_log timestamptz;
BEGIN
    polls := 0;
    t0 := clock_timestamp();
    PERFORM pg_terminate_backend(p_owner);
    LOOP
        SELECT j.status INTO new_status FROM det_jobs j WHERE j.id = p_job;
        polls := polls + 1;
        EXIT WHEN new_status <> 'running';
        IF clock_timestamp() - t0 > interval '30 s' THEN
            new_status := NULL;         -- seen_ms stays NULL: missed
            RETURN;
        END IF;
        IF p_poll_ms > 0 THEN
            PERFORM pg_sleep(p_poll_ms / 1000);
        END IF;
    END LOOP;
    seen_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    SELECT max(l.at) INTO t_log
      FROM finlive_reap_log l
     WHERE l.target = 'det_jobs'::regclass AND l.job_id = p_job;
    log_ms := extract(epoch FROM t_log - t0) * 1000;
    SELECT extract(epoch FROM j.reaped_at - t0) * 1000 INTO upd_ms
      FROM det_jobs j WHERE j.id = p_job;
END;
$fn$;

-- A burst: terminate every owner at once, then poll continuously until no
-- job of the burst is running.  last_ms: time to the last reap; ticks: the
-- distinct reaping transactions (finlive_reap_log.at) that reaped them.
CREATE FUNCTION bench_burst(p_owners integer[], p_jobs bigint[],
                            OUT last_ms float8, OUT first_ms float8,
                            OUT log_ticks integer, OUT reaped integer)
LANGUAGE plpgsql
AS $fn$
DECLARE
    t0 timestamptz;
    t_first timestamptz;
    n integer;
BEGIN
    t0 := clock_timestamp();
    PERFORM pg_terminate_backend(o) FROM unnest(p_owners) o;
    LOOP
        SELECT count(*) FILTER (WHERE j.status = 'running'),
               count(*) FILTER (WHERE j.status <> 'running')
          INTO n, reaped
          FROM det_jobs j WHERE j.id = ANY (p_jobs);
        IF reaped > 0 AND t_first IS NULL THEN
            t_first := clock_timestamp();
        END IF;
        EXIT WHEN n = 0;
        IF clock_timestamp() - t0 > interval '30 s' THEN
            EXIT;
        END IF;
    END LOOP;
    IF n = 0 THEN
        last_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    END IF;
    first_ms := extract(epoch FROM t_first - t0) * 1000;
    SELECT count(DISTINCT l.at) INTO log_ticks
      FROM finlive_reap_log l
     WHERE l.target = 'det_jobs'::regclass AND l.job_id = ANY (p_jobs);
END;
$fn$;
