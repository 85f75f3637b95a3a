-- The comparators for the tick and reap rows: the reaper of the contract
-- (1.3), written as a capable user would write it in PL/pgSQL without
-- finlive, doing what finlive's reaper must do now:
--
--   * candidates are read and decided WITHOUT row locks (a defer, or a job
--     left alone, changes nothing and locks nothing);
--   * only a job to be reaped is locked, FOR UPDATE SKIP LOCKED, re-read
--     with its run and task, its ownership asked again where it decides,
--     and decided again under the lock;
--   * each reap updates the job, calls the target's on_reap hook (where it
--     has one), sends NOTIFY finlive_reaped with the JSON payload and
--     appends a log row with finlive_reap_log's columns (bench_reap_log);
--   * with per-job isolation (p_isolate, the default) each job's work runs
--     in a BEGIN ... EXCEPTION block (a subtransaction), so one failing job
--     undoes its own changes alone and the tick goes on; without it, one
--     error ends the tick.
--
-- Ownership is the same session-level advisory lock (finlive's key space:
-- objsubid 7966, classid/objid = high/low 32 bits of the job id), asked of
-- pg_locks: once per tick for the candidates, into a hashed set, and once
-- per reaped job under its row lock (only where ownership decides).
-- The policy is the server's finlive.* settings, read once per tick (the
-- benchmark's targets have no policy of their own), the restart window
-- counted from pg_postmaster_start_time(); whether the target claims owned
-- jobs and has a hook comes from the one-row table bench_target that each
-- benchmark database fills.  No gate (no benchmark target has one).
--
-- The decision is one inlined SQL function, bench_decide(), used by the
-- set-based candidate pass and by the per-job pass under the lock alike.
--
-- Two versions of the candidate pass, the same but for the plan-shaping:
--
--   plpgsql_reap_once        tuned, as after a look at EXPLAIN ANALYZE:
--                            the run of each running job through a LATERAL
--                            subquery kept from flattening (OFFSET 0), an
--                            index probe whatever the table sizes; the stage
--                            through a scalar subquery run only for rows
--                            that pass the filter; ownership as IN against
--                            the pg_locks set (hashed); SET jit = off.
--   plpgsql_reap_once_plain  as first written: plain LEFT JOINs, default
--                            settings.
CREATE TABLE bench_target (
    claim_owned boolean NOT NULL,
    has_hook    boolean NOT NULL
);

CREATE TABLE bench_reap_log (
    at         timestamptz NOT NULL DEFAULT now(),
    target     regclass    NOT NULL,
    job_id     bigint      NOT NULL,
    tier       integer     NOT NULL,
    old_status text        NOT NULL,
    new_status text        NOT NULL,
    owner_pid  integer,
    dry_run    boolean     NOT NULL DEFAULT false
);
CREATE INDEX bench_reap_log_at ON bench_reap_log (at);

CREATE TYPE bench_policy AS (
    enabled        boolean,
    finalize_grace interval,
    claim_grace    interval,
    max_running    interval,
    guarded        text[],
    claim_owned    boolean,
    in_restart     boolean,
    has_hook       boolean
);

CREATE FUNCTION bench_policy() RETURNS bench_policy
LANGUAGE sql STABLE
AS $fn$
    SELECT ROW(current_setting('finlive.enabled')::boolean,
               current_setting('finlive.finalize_grace')::interval,
               current_setting('finlive.claim_grace')::interval,
               current_setting('finlive.max_running')::interval,
               string_to_array(replace(current_setting('finlive.guarded_stages'), ' ', ''), ','),
               t.claim_owned,
               now() < pg_postmaster_start_time() + current_setting('finlive.restart_grace')::interval,
               t.has_hook)::bench_policy
      FROM bench_target t
$fn$;

-- 'tier:action' or NULL (leave it alone).  In the contract's order: Tier-2
-- (a guarded job whose finalizer lives is deferred; in the restart window a
-- guarded job is left alone), Tier-1, Tier-3 (whatever the ownership), and
-- the defer last, so that Tier-3 overrides it.  A NULL or infinity time has
-- not happened yet; -infinity is every grace passed.
CREATE FUNCTION bench_decide(p_now timestamptz, p_exit integer, p_finished timestamptz,
                             p_started timestamptz, p_stage text, p_owned boolean,
                             p_attempts integer, p_max_attempts integer, p bench_policy)
RETURNS text
LANGUAGE sql STABLE
AS $fn$
    SELECT CASE
        WHEN p_exit IS NOT NULL AND p_finished <= p_now - (p).finalize_grace
             AND NOT ((p).enabled
                      AND coalesce('*' = ANY ((p).guarded) OR p_stage = ANY ((p).guarded), false)
                      AND (p_owned OR (p).in_restart))
          THEN '2:' || CASE WHEN p_exit = 0 THEN 'done'
                            WHEN p_attempts < p_max_attempts THEN 'queued'
                            ELSE 'failed' END
        WHEN p_exit IS NULL AND (p).claim_owned AND (p).enabled AND NOT (p).in_restart
             AND p_started <= p_now - (p).claim_grace AND NOT p_owned
          THEN '1:' || CASE WHEN p_attempts < p_max_attempts THEN 'queued' ELSE 'failed' END
        WHEN p_started <= p_now - (p).max_running
          THEN '3:' || CASE WHEN p_attempts < p_max_attempts THEN 'queued' ELSE 'failed' END
        WHEN p_exit IS NOT NULL AND p_finished <= p_now - (p).finalize_grace AND p_owned
          THEN '2:deferred'
    END
$fn$;

-- One job to reap: lock it (skip it if another transaction holds it),
-- re-read it, decide again, and do the reap's writes.  Returns what it did
-- ('tier:action'), NULL if it did nothing.
CREATE FUNCTION plpgsql_reap_job(p_id bigint, p bench_policy) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    j        record;
    v_owner  integer;
    v_what   text;
    v_tier   integer;
    v_status text;
BEGIN
    SELECT jj.status, jj.attempts, jj.max_attempts, jj.started_at,
           r.exit_code, r.finished_at, tk.stage
      INTO j
      FROM jobs jj
      LEFT JOIN runs r ON r.id = jj.run_id
      LEFT JOIN tasks tk ON tk.id = jj.task_id
     WHERE jj.id = p_id AND jj.status = 'running'
       FOR UPDATE OF jj SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- ownership, asked again under the row lock where it decides
    IF (p).enabled
       AND ((j.exit_code IS NOT NULL
             AND coalesce('*' = ANY ((p).guarded) OR j.stage = ANY ((p).guarded), false))
            OR (j.exit_code IS NULL AND (p).claim_owned)) THEN
        SELECT l.pid INTO v_owner
          FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.objsubid = 7966 AND l.granted
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
           AND l.classid = (p_id >> 32)::oid
           AND l.objid = (p_id & 4294967295)::oid
         LIMIT 1;
    END IF;
    v_what := bench_decide(now(), j.exit_code, j.finished_at, j.started_at, j.stage,
                           v_owner IS NOT NULL, j.attempts, j.max_attempts, p);
    IF v_what IS NULL OR v_what = '2:deferred' THEN
        RETURN NULL;
    END IF;
    v_tier := split_part(v_what, ':', 1)::integer;
    v_status := split_part(v_what, ':', 2);
    UPDATE jobs
       SET status = v_status,
           attempts = attempts + CASE WHEN v_status = 'queued' THEN 1 ELSE 0 END
     WHERE id = p_id;
    IF (p).has_hook THEN
        PERFORM bench_on_reap(p_id, v_tier, v_status);
    END IF;
    PERFORM pg_notify('finlive_reaped',
                      json_build_object('target', 'public.jobs', 'job_id', p_id,
                                        'tier', v_tier, 'status', v_status)::text);
    INSERT INTO bench_reap_log (at, target, job_id, tier, old_status, new_status, owner_pid, dry_run)
    VALUES (now(), 'jobs'::regclass, p_id, v_tier, j.status, v_status, v_owner, false);
    RETURN v_what;
END;
$fn$;

CREATE FUNCTION plpgsql_reap_once(p_isolate boolean DEFAULT true,
                                  OUT job_id bigint, OUT tier integer, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET jit = off
AS $fn$
DECLARE
    p      bench_policy := bench_policy();
    c      record;
    v_done text;
BEGIN
    FOR c IN
        WITH owned AS MATERIALIZED (
            SELECT (l.classid::bigint << 32) | l.objid::bigint AS job_id
              FROM pg_catalog.pg_locks l
             WHERE l.locktype = 'advisory'
               AND l.objsubid = 7966
               AND l.granted
               AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                  WHERE d.datname = pg_catalog.current_database())
        ),
        candidate AS (
            SELECT j.id, j.attempts, j.max_attempts, j.started_at,
                   r.exit_code, r.finished_at,
                   (SELECT tk.stage FROM tasks tk WHERE tk.id = j.task_id) AS stage,
                   j.id IN (SELECT o.job_id FROM owned o) AS owned
              FROM jobs j
              LEFT JOIN LATERAL (SELECT r.exit_code, r.finished_at FROM runs r
                                  WHERE r.id = j.run_id OFFSET 0) r ON true
             WHERE j.status = 'running'
               AND ((r.exit_code IS NOT NULL AND r.finished_at <= now() - (p).finalize_grace)
                    OR ((p).claim_owned AND (p).enabled AND r.exit_code IS NULL
                        AND j.started_at <= now() - (p).claim_grace)
                    OR j.started_at <= now() - (p).max_running)
            OFFSET 0
        )
        SELECT d.id, d.what
          FROM (SELECT cd.id,
                       bench_decide(now(), cd.exit_code, cd.finished_at, cd.started_at, cd.stage,
                                    cd.owned, cd.attempts, cd.max_attempts, p) AS what
                  FROM candidate cd) d
         WHERE d.what IS NOT NULL
         ORDER BY d.id
    LOOP
        IF c.what = '2:deferred' THEN
            job_id := c.id; tier := 2; action := 'deferred';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_isolate THEN
            BEGIN
                v_done := plpgsql_reap_job(c.id, p);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'could not reap job % of target "public.jobs": %', c.id, SQLERRM;
                v_done := NULL;
            END;
        ELSE
            v_done := plpgsql_reap_job(c.id, p);
        END IF;
        IF v_done IS NOT NULL THEN
            job_id := c.id;
            tier := split_part(v_done, ':', 1)::integer;
            action := split_part(v_done, ':', 2);
            RETURN NEXT;
        END IF;
    END LOOP;
END;
$fn$;

CREATE FUNCTION plpgsql_reap_once_plain(p_isolate boolean DEFAULT true,
                                        OUT job_id bigint, OUT tier integer, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
AS $fn$
DECLARE
    p      bench_policy := bench_policy();
    c      record;
    v_done text;
BEGIN
    FOR c IN
        WITH owned AS MATERIALIZED (
            SELECT (l.classid::bigint << 32) | l.objid::bigint AS job_id
              FROM pg_catalog.pg_locks l
             WHERE l.locktype = 'advisory'
               AND l.objsubid = 7966
               AND l.granted
               AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                  WHERE d.datname = pg_catalog.current_database())
        )
        SELECT d.id, d.what
          FROM (SELECT j.id,
                       bench_decide(now(), r.exit_code, r.finished_at, j.started_at, tk.stage,
                                    o.job_id IS NOT NULL, j.attempts, j.max_attempts, p) AS what
                  FROM jobs j
                  LEFT JOIN runs r ON r.id = j.run_id
                  LEFT JOIN tasks tk ON tk.id = j.task_id
                  LEFT JOIN owned o ON o.job_id = j.id
                 WHERE j.status = 'running'
                   AND ((r.exit_code IS NOT NULL AND r.finished_at <= now() - (p).finalize_grace)
                        OR ((p).claim_owned AND (p).enabled AND r.exit_code IS NULL
                            AND j.started_at <= now() - (p).claim_grace)
                        OR j.started_at <= now() - (p).max_running)) d
         WHERE d.what IS NOT NULL
         ORDER BY d.id
    LOOP
        IF c.what = '2:deferred' THEN
            job_id := c.id; tier := 2; action := 'deferred';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_isolate THEN
            BEGIN
                v_done := plpgsql_reap_job(c.id, p);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'could not reap job % of target "public.jobs": %', c.id, SQLERRM;
                v_done := NULL;
            END;
        ELSE
            v_done := plpgsql_reap_job(c.id, p);
        END IF;
        IF v_done IS NOT NULL THEN
            job_id := c.id;
            tier := split_part(v_done, ':', 1)::integer;
            action := split_part(v_done, ':', 2);
            RETURN NEXT;
        END IF;
    END LOOP;
END;
$fn$;
