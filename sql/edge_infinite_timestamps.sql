-- Rule [1.2]: a '-infinity' timestamp is infinitely long ago (every grace
-- that counts from it has passed); an 'infinity' or NULL one has not
-- happened yet (no grace that counts from it has passed).  No timestamp,
-- however odd -- the infinities, the largest and smallest finite ones --
-- makes the reaper misjudge, overflow or get stuck: each job is reaped, or
-- left alone, exactly once, and a job left alone is not looked at again
-- tick after tick.

-- The application's tables, in a schema of their own; started_at may be
-- NULL here.  add_job() inserts a running job with its task (in stage) and
-- its run (finished_at and exit_code as given), started at started_at.
CREATE SCHEMA edge_inf;
SET search_path = edge_inf, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE jobs (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    started_at   timestamptz
);
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE TABLE claimed_jobs (LIKE jobs INCLUDING ALL);
CREATE PROCEDURE add_job(id bigint, stage text, exit_code integer, finished_at timestamptz,
                         started_at timestamptz, target text DEFAULT 'jobs')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO edge_inf.tasks VALUES (id, stage);
    INSERT INTO edge_inf.runs VALUES (id, finished_at, exit_code);
    EXECUTE format('INSERT INTO edge_inf.%I VALUES ($1, ''running'', $1, $1, 0, 2, $2)', target)
        USING id, started_at;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
SELECT finlive_register('jobs', 'runs', 'tasks');
SELECT finlive_register('claimed_jobs', 'runs', 'tasks', claim_owned => true);

-- Tier-2: the run's finished_at.
CALL add_job(1, 'testing', 0, '-infinity', now());         -- finished ages ago: done
CALL add_job(2, 'testing', 1, '-infinity', now());         -- failed run: queued
CALL add_job(3, 'testing', 0, 'infinity', now());          -- not finished yet
CALL add_job(4, 'testing', 0, '294276-12-31 23:59:59+00', now());  -- the last finite time
CALL add_job(5, 'deploy-staging', 0, '-infinity', now());  -- owned: deferred
-- Tier-3: the job's started_at.
CALL add_job(11, 'testing', NULL, NULL, '-infinity');      -- ceiling passed: queued
CALL add_job(12, 'testing', NULL, NULL, 'infinity');       -- never past the ceiling
CALL add_job(13, 'testing', NULL, NULL, NULL);             -- not started yet
CALL add_job(14, 'testing', NULL, NULL, '4713-11-24 00:00:00+00 BC');  -- the first finite time
CALL add_job(15, 'testing', NULL, NULL, '294276-12-31 23:59:59+00');
-- Tier-1 (claimed jobs): the job's started_at against claim_grace.
CALL add_job(21, 'testing', NULL, NULL, '-infinity', 'claimed_jobs');  -- nobody owns it: queued
CALL add_job(22, 'testing', NULL, NULL, 'infinity', 'claimed_jobs');   -- within the grace
CALL add_job(23, 'testing', NULL, NULL, NULL, 'claimed_jobs');         -- within the grace
CALL add_job(24, 'testing', NULL, NULL, '-infinity', 'claimed_jobs');  -- owned: ceiling only
SELECT owner_mark(5, 5, 'deploy-staging') > 0 AS owns_5, owner_mark(24) > 0 AS owns_24;

SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT id, status, attempts FROM jobs UNION ALL SELECT id, status, attempts FROM claimed_jobs
 ORDER BY 1;
SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3,
       finalizer_defers_total AS defers, errors_total, jobs_examined FROM finlive_stats;

-- The next ticks: only the deferred job is looked at again; nothing else is
-- examined, locked or reaped.
SELECT finlive_stats_reset();
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT * FROM finlive_reap_once() ORDER BY job_id;
SELECT reaped_total, finalizer_defers_total AS defers, errors_total, jobs_examined
  FROM finlive_stats;

-- finlive_explain says the same: when the next tier could act, if ever
-- (never, for a ceiling past the last time PostgreSQL can represent).
SELECT j.id, e ->> 'action' AS action,
       CASE WHEN isfinite(at) THEN 'started_at + ' || (at - j.started_at)
            ELSE coalesce(at::text, 'never') END AS eligible_at
  FROM (SELECT id, started_at FROM jobs WHERE status = 'running'
        UNION ALL SELECT id, started_at FROM claimed_jobs WHERE status = 'running') j,
       LATERAL (SELECT finlive_explain(CASE WHEN j.id > 20 THEN 'claimed_jobs'
                                            ELSE 'jobs' END::regclass, j.id) AS e) x,
       LATERAL (SELECT (e ->> 'eligible_at')::timestamptz AS at) y
 ORDER BY j.id;

-- The diagnostics list such jobs like any other.
SELECT target, job_id, CASE WHEN isfinite(started_at) THEN 'finite' ELSE started_at::text END AS started,
       CASE WHEN isfinite(finished_at) THEN 'finite' ELSE finished_at::text END AS finished,
       guarded, owner_pid IS NOT NULL AS owned
  FROM finlive_running_jobs ORDER BY job_id;
SELECT reason, job_id FROM finlive_audit() ORDER BY reason, job_id;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered,
       finlive_unregister('claimed_jobs') AS unregistered_claimed;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_inf CASCADE;
RESET client_min_messages;
