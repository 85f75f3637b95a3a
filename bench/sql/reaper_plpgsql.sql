-- The comparators for rows 3 and 4: the same tiers as finlive's reaper,
-- written as a capable user would write them in PL/pgSQL without finlive.
-- Ownership is the same session-level advisory lock (finlive's key space:
-- objsubid 7966, classid/objid = high/low 32 bits of the job id), asked of
-- pg_locks once per tick, into a materialized set; one set-based statement
-- then reads the candidates with the same filter, locks them
-- FOR UPDATE SKIP LOCKED, decides Tier-2, Tier-1 and Tier-3 in the
-- contract's order, updates the reaped jobs, logs and notifies each reap,
-- and returns the actions (deferrals included) like finlive_reap_once().
-- It reads finlive's settings so both sides decide with the same policy.
-- No gate, no on_reap hook, no restart window (the benchmark sets
-- finlive.restart_grace = 0) and no per-job error isolation: all of that
-- would only make it slower.
--
-- Two versions, the same but for the plan-shaping:
--
--   plpgsql_reap_once        tuned, as after a look at EXPLAIN ANALYZE:
--                            the run of each running job comes through a
--                            LATERAL subquery kept from flattening
--                            (OFFSET 0), an index probe whatever the table
--                            sizes, and the stage through a scalar subquery
--                            run only for the rows that pass the filter;
--                            ownership is tested with IN / NOT
--                            IN against the pg_locks set, which the planner
--                            hashes (a join to it is planned for the one row
--                            it guesses pg_locks yields, as a nested loop);
--                            and SET jit = off (compiling costs more than
--                            the query).  The goal is judged on this one.
--   plpgsql_reap_once_plain  as first written: plain LEFT JOINs, default
--                            settings (the planner hashes whole runs and
--                            tasks tables once the running jobs are many).
CREATE FUNCTION plpgsql_reap_once(OUT job_id bigint, OUT tier integer, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET jit = off
AS $fn$
DECLARE
    v_enabled        boolean  := current_setting('finlive.enabled')::boolean;
    v_finalize_grace interval := current_setting('finlive.finalize_grace')::interval;
    v_claim_grace    interval := current_setting('finlive.claim_grace')::interval;
    v_max_running    interval := current_setting('finlive.max_running')::interval;
    v_guarded        text[]   := string_to_array(replace(current_setting('finlive.guarded_stages'), ' ', ''), ',');
    v_claim_owned    constant boolean := true;	-- as registered for finlive
BEGIN
    RETURN QUERY
    WITH owned AS MATERIALIZED (
        SELECT (l.classid::bigint << 32) | l.objid::bigint AS job_id, l.pid
          FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory'
           AND l.objsubid = 7966
           AND l.granted
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
    ),
    candidate AS (
        SELECT j.id, j.status, j.attempts, j.max_attempts, j.started_at,
               r.exit_code, r.finished_at,
               (SELECT tk.stage FROM tasks tk WHERE tk.id = j.task_id) AS stage,
               j.id IN (SELECT o.job_id FROM owned o) AS owned
          FROM jobs j
          LEFT JOIN LATERAL (SELECT r.exit_code, r.finished_at FROM runs r
                             WHERE r.id = j.run_id OFFSET 0) r ON true
         WHERE j.status = 'running'
           AND ((r.exit_code IS NOT NULL AND r.finished_at <= now() - v_finalize_grace)
                OR (v_claim_owned AND v_enabled AND r.exit_code IS NULL
                    AND j.started_at <= now() - v_claim_grace
                    AND j.id NOT IN (SELECT o.job_id FROM owned o))
                OR j.started_at <= now() - v_max_running)
           FOR UPDATE OF j SKIP LOCKED
    ),
    tiered AS (
        SELECT c.*,
               CASE WHEN c.attempts < c.max_attempts THEN 'queued' ELSE 'failed' END AS requeue,
               CASE
                 WHEN c.exit_code IS NOT NULL AND c.finished_at IS NOT NULL THEN
                   CASE WHEN now() - c.finished_at < v_finalize_grace THEN NULL
                        WHEN v_enabled AND ('*' = ANY (v_guarded) OR c.stage = ANY (v_guarded))
                             AND c.owned THEN 'deferred'
                        WHEN c.exit_code = 0 THEN 'done'
                        ELSE 'requeue' END
                 WHEN v_claim_owned AND v_enabled AND c.exit_code IS NULL
                      AND now() - c.started_at >= v_claim_grace AND NOT c.owned
                   THEN 'requeue'
               END AS first_action,
               CASE
                 WHEN c.exit_code IS NOT NULL AND c.finished_at IS NOT NULL THEN 2
                 ELSE 1
               END AS first_tier
          FROM candidate c
    ),
    decided AS (
        SELECT t.id, t.status,
               CASE WHEN (t.first_action IS NULL OR t.first_action = 'deferred')
                         AND now() - t.started_at >= v_max_running THEN 3
                    ELSE t.first_tier END AS tier,
               CASE WHEN (t.first_action IS NULL OR t.first_action = 'deferred')
                         AND now() - t.started_at >= v_max_running THEN t.requeue
                    WHEN t.first_action = 'requeue' THEN t.requeue
                    ELSE t.first_action END AS action
          FROM tiered t
    ),
    reaped AS (
        UPDATE jobs j
           SET status = d.action,
               attempts = j.attempts + CASE WHEN d.action = 'queued' THEN 1 ELSE 0 END
          FROM decided d
         WHERE j.id = d.id AND d.action IN ('done', 'queued', 'failed')
        RETURNING j.id
    ),
    logged AS (
        INSERT INTO bench_reap_log (job_id, tier, old_status, new_status, owner_pid)
        SELECT d.id, d.tier, d.status, d.action,
               (SELECT o.pid FROM owned o WHERE o.job_id = d.id)
          FROM decided d
         WHERE d.action IN ('done', 'queued', 'failed')
        RETURNING 1
    )
    -- NOTIFY each reap (pg_notify returns void: IS NULL makes it a condition)
    SELECT d.id, d.tier, d.action
      FROM decided d
     WHERE d.action IS NOT NULL
       AND (d.action = 'deferred'
            OR pg_notify('bench_reaped',
                         json_build_object('target', 'jobs', 'job_id', d.id,
                                           'tier', d.tier, 'status', d.action)::text) IS NULL
            OR true)
     ORDER BY d.id;
END;
$fn$;

CREATE FUNCTION plpgsql_reap_once_plain(OUT job_id bigint, OUT tier integer, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_enabled        boolean  := current_setting('finlive.enabled')::boolean;
    v_finalize_grace interval := current_setting('finlive.finalize_grace')::interval;
    v_claim_grace    interval := current_setting('finlive.claim_grace')::interval;
    v_max_running    interval := current_setting('finlive.max_running')::interval;
    v_guarded        text[]   := string_to_array(replace(current_setting('finlive.guarded_stages'), ' ', ''), ',');
    v_claim_owned    constant boolean := true;	-- as registered for finlive
BEGIN
    RETURN QUERY
    WITH owned AS MATERIALIZED (
        SELECT (l.classid::bigint << 32) | l.objid::bigint AS job_id, l.pid
          FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory'
           AND l.objsubid = 7966
           AND l.granted
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
    ),
    candidate AS (
        SELECT j.id, j.status, j.attempts, j.max_attempts, j.started_at,
               r.exit_code, r.finished_at, tk.stage, o.pid AS owner_pid
          FROM jobs j
          LEFT JOIN runs r ON r.id = j.run_id
          LEFT JOIN tasks tk ON tk.id = j.task_id
          LEFT JOIN owned o ON o.job_id = j.id
         WHERE j.status = 'running'
           AND ((r.exit_code IS NOT NULL AND r.finished_at <= now() - v_finalize_grace)
                OR (v_claim_owned AND v_enabled AND r.exit_code IS NULL
                    AND j.started_at <= now() - v_claim_grace AND o.pid IS NULL)
                OR j.started_at <= now() - v_max_running)
           FOR UPDATE OF j SKIP LOCKED
    ),
    tiered AS (
        SELECT c.*,
               CASE WHEN c.attempts < c.max_attempts THEN 'queued' ELSE 'failed' END AS requeue,
               CASE
                 WHEN c.exit_code IS NOT NULL AND c.finished_at IS NOT NULL THEN
                   CASE WHEN now() - c.finished_at < v_finalize_grace THEN NULL
                        WHEN v_enabled AND ('*' = ANY (v_guarded) OR c.stage = ANY (v_guarded))
                             AND c.owner_pid IS NOT NULL THEN 'deferred'
                        WHEN c.exit_code = 0 THEN 'done'
                        ELSE 'requeue' END
                 WHEN v_claim_owned AND v_enabled AND c.exit_code IS NULL
                      AND now() - c.started_at >= v_claim_grace AND c.owner_pid IS NULL
                   THEN 'requeue'
               END AS first_action,
               CASE
                 WHEN c.exit_code IS NOT NULL AND c.finished_at IS NOT NULL THEN 2
                 ELSE 1
               END AS first_tier
          FROM candidate c
    ),
    decided AS (
        SELECT t.id, t.status, t.owner_pid,
               CASE WHEN (t.first_action IS NULL OR t.first_action = 'deferred')
                         AND now() - t.started_at >= v_max_running THEN 3
                    ELSE t.first_tier END AS tier,
               CASE WHEN (t.first_action IS NULL OR t.first_action = 'deferred')
                         AND now() - t.started_at >= v_max_running THEN t.requeue
                    WHEN t.first_action = 'requeue' THEN t.requeue
                    ELSE t.first_action END AS action
          FROM tiered t
    ),
    reaped AS (
        UPDATE jobs j
           SET status = d.action,
               attempts = j.attempts + CASE WHEN d.action = 'queued' THEN 1 ELSE 0 END
          FROM decided d
         WHERE j.id = d.id AND d.action IN ('done', 'queued', 'failed')
        RETURNING j.id
    ),
    logged AS (
        INSERT INTO bench_reap_log (job_id, tier, old_status, new_status, owner_pid)
        SELECT d.id, d.tier, d.status, d.action, d.owner_pid
          FROM decided d
         WHERE d.action IN ('done', 'queued', 'failed')
        RETURNING 1
    )
    -- NOTIFY each reap (pg_notify returns void: IS NULL makes it a condition)
    SELECT d.id, d.tier, d.action
      FROM decided d
     WHERE d.action IS NOT NULL
       AND (d.action = 'deferred'
            OR pg_notify('bench_reaped',
                         json_build_object('target', 'jobs', 'job_id', d.id,
                                           'tier', d.tier, 'status', d.action)::text) IS NULL
            OR true)
     ORDER BY d.id;
END;
$fn$;
