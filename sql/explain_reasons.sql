-- Rule [1.3] (why is this job not reaped?): finlive_explain(jobs, job_id)
-- answers, for one job, what the reaper would do with it now and why, as
-- jsonb: status; tier and action (none, deferred, done, queued, failed,
-- skipped) of the next tick if nothing changed; reason, one sentence naming
-- the deciding fact, a different one for each situation a tick can meet;
-- eligible_at, when the next tier could act (the earliest of the grace,
-- claim-grace and ceiling times that apply; NULL if none); owner (as in
-- finlive_owners, or NULL); policy, the effective values the decision used.
-- It changes nothing (no row, no lock, no counter, no log, the gate's work
-- rolled back) and runs with the caller's privileges: a role that may not
-- read the jobs table gets 42501.  (A row or table locked by another
-- transaction: the isolation spec explain_row_locked.)

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job of a target with its task (in stage) and its run (ended
-- finished_ago ago with exit_code; both NULL while the run is still going),
-- started started_ago ago.
CREATE SCHEMA explain_why;
SET search_path = explain_why, public;
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
CREATE TABLE plain_jobs (LIKE jobs INCLUDING ALL);
CREATE TABLE broken_jobs (LIKE jobs INCLUDING ALL);
CREATE TABLE unregistered_jobs (LIKE jobs INCLUDING ALL);
CREATE PROCEDURE add_job(target text, id bigint, stage text, exit_code integer,
                         finished_ago interval,
                         started_ago interval DEFAULT '20 minutes')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO explain_why.tasks VALUES (id, stage);
    INSERT INTO explain_why.runs VALUES (id, now() - finished_ago, exit_code);
    EXECUTE format('INSERT INTO explain_why.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - $2)',
                   target) USING id, started_ago;
END
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

-- The hooks: the gate says no to vetoed jobs (and notes each call); on_reap
-- refuses the jobs listed in refused.
CREATE TABLE vetoes (job_id bigint);
CREATE TABLE gate_calls (job_id bigint);
CREATE TABLE refused (job_id bigint);
CREATE FUNCTION green(job bigint) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO explain_why.gate_calls VALUES (job);
    SELECT NOT EXISTS (SELECT FROM explain_why.vetoes WHERE job_id = job);
$$;
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM explain_why.refused WHERE job_id = job) THEN
        RAISE EXCEPTION 'the advance of job % is refused', job;
    END IF;
END
$$;
CREATE FUNCTION advance_broken(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS 'SELECT';
SELECT finlive_register('jobs', 'runs', 'tasks', claim_owned => true,
                        on_reap => 'advance(bigint, integer, text)', gate => 'green(bigint)');
SELECT finlive_register('plain_jobs', 'runs', 'tasks', enabled => false,
                        finalize_grace => '2 minutes', max_running => '1 hour');
SELECT finlive_register('broken_jobs', 'runs', 'tasks',
                        on_reap => 'advance_broken(bigint, integer, text)');

-- One job per situation.
CALL add_job('jobs', 1, 'testing', 0, '10 minutes');
UPDATE jobs SET status = 'queued' WHERE id = 1;                        -- not running
CALL add_job('jobs', 2, 'testing', 0, '2 minutes');                    -- within finalize_grace
CALL add_job('jobs', 3, 'deploy-staging', 0, '10 minutes');            -- guarded: deferred
CALL add_job('jobs', 4, 'testing', 1, '10 minutes');                   -- Tier-2, the gate says yes
CALL add_job('jobs', 5, 'testing', 0, '10 minutes');                   -- Tier-2, the gate says no
INSERT INTO vetoes VALUES (5);
CALL add_job('jobs', 6, 'development', NULL, NULL, '5 minutes');       -- Tier-1: dead worker
CALL add_job('jobs', 7, 'development', NULL, NULL, '10 seconds');      -- within claim_grace
CALL add_job('jobs', 8, 'development', NULL, NULL, '5 minutes');       -- worker alive
CALL add_job('jobs', 9, 'development', NULL, NULL, '3 hours');         -- Tier-3 ceiling
CALL add_job('jobs', 10, 'testing', 0, '10 minutes');                  -- its reap will fail
INSERT INTO refused VALUES (10);
CALL add_job('jobs', 11, 'testing', 0, '10 minutes');
UPDATE runs SET finished_at = NULL WHERE id = 11;                      -- exit code, no finish
CALL add_job('jobs', 13, 'deploy-staging', 0, '10 minutes');           -- guarded stage, no owner
CALL add_job('plain_jobs', 21, 'development', NULL, NULL, '5 minutes'); -- only Tier-3
CALL add_job('plain_jobs', 22, 'deploy-staging', 0, '10 minutes');     -- switched off: owner ignored
CALL add_job('broken_jobs', 31, 'testing', 0, '10 minutes');
SELECT owner_mark(3, 3, 'deploy-staging') > 0 AS owns_3, owner_mark(8) > 0 AS owns_8,
       owner_mark(9) > 0 AS owns_9, owner_mark(22, 22, 'deploy-staging') > 0 AS owns_22;

-- explain_job(target, id): the answer, with its times and pids written as
-- the facts they are, so that the output is the same at every run.
CREATE VIEW job_times AS
    SELECT 'jobs'::regclass AS target, * FROM jobs
    UNION ALL SELECT 'plain_jobs'::regclass, * FROM plain_jobs
    UNION ALL SELECT 'broken_jobs'::regclass, * FROM broken_jobs;
CREATE FUNCTION mask(t text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(t, '(session|pid) [0-9]+', '\1 <pid>', 'g'),
                          '[A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9:.]+ [0-9]{4} [A-Z]{3}',
                          '<time>', 'g')
$$;
CREATE FUNCTION explain_job(target regclass, id bigint,
    OUT job bigint, OUT status text, OUT tier int, OUT action text, OUT eligible_at text,
    OUT owner text, OUT reason text)
LANGUAGE sql AS $$
    SELECT explain_job.id, e ->> 'status', (e ->> 'tier')::int, e ->> 'action',
           CASE WHEN e ->> 'eligible_at' IS NULL THEN 'never'
                WHEN at = r.finished_at + p.effective_finalize_grace THEN 'finished_at + finalize_grace'
                WHEN at = j.started_at + p.effective_claim_grace THEN 'started_at + claim_grace'
                WHEN at = j.started_at + p.effective_max_running THEN 'started_at + max_running'
                ELSE 'other' END,
           CASE WHEN e -> 'owner' = 'null' THEN NULL
                WHEN (e -> 'owner' ->> 'pid')::int = owner_pid()
                 AND (e -> 'owner' ->> 'job_id')::bigint = explain_job.id
                 AND (e -> 'owner' ->> 'since')::timestamptz = o.since
                 AND (e -> 'owner' ->> 'token')::bigint = o.token THEN 'the owner session'
                ELSE 'other' END,
           mask(e ->> 'reason')
      FROM (SELECT finlive_explain(explain_job.target, explain_job.id) AS e) x
      CROSS JOIN LATERAL (SELECT (x.e ->> 'eligible_at')::timestamptz AS at) y
      LEFT JOIN explain_why.job_times j ON j.target = explain_job.target AND j.id = explain_job.id
      LEFT JOIN explain_why.runs r ON r.id = j.run_id
      LEFT JOIN public.finlive_targets p ON p.jobs = explain_job.target
      LEFT JOIN public.finlive_owners o ON o.job_id = explain_job.id
$$;
\set all 'SELECT (explain_job(target, id)).* FROM (SELECT target, id FROM job_times UNION ALL VALUES (''jobs''::regclass, 12::bigint)) j ORDER BY target::text, id'

-- Every situation, each with its own reason.
\x on
:all;
\x off

-- The reasons name their facts: the end of the grace, the owner's pid and
-- since when, the start and the ceiling.
SELECT e ->> 'reason' LIKE '%' || (r.finished_at + interval '5 minutes')::text || '%' AS names_grace_end,
       (e ->> 'eligible_at')::timestamptz = r.finished_at + interval '5 minutes' AS eligible_at_grace_end
  FROM runs r, LATERAL (SELECT finlive_explain('jobs', 2) AS e) x WHERE r.id = 2;
SELECT e ->> 'reason' LIKE format('%%session %s has owned it since %s%%', o.pid, o.since) AS names_owner,
       e -> 'owner' ->> 'stage' AS owner_stage, e -> 'owner' ->> 'run_id' AS owner_run
  FROM finlive_owners o, LATERAL (SELECT finlive_explain('jobs', 3) AS e) x WHERE o.job_id = 3;
SELECT e ->> 'reason' LIKE '%' || j.started_at::text || '%' AS names_start
  FROM jobs j, LATERAL (SELECT finlive_explain('jobs', 9) AS e) x WHERE j.id = 9;
-- The policy the decision used, per target.
SELECT finlive_explain('jobs', 4) -> 'policy' AS policy_of_jobs;
SELECT finlive_explain('plain_jobs', 21) -> 'policy' AS policy_of_plain_jobs;

-- Nothing changed: not a row (same row versions), not a counter, not the
-- log; the gate was asked (job 4, 5) but what it did was rolled back; no
-- lock is left.
CREATE VIEW row_versions AS
    SELECT 'jobs' AS target, id, xmin::text AS row_xmin, ctid::text AS row_ctid, status FROM jobs
    UNION ALL SELECT 'plain_jobs', id, xmin::text, ctid::text, status FROM plain_jobs
    UNION ALL SELECT 'broken_jobs', id, xmin::text, ctid::text, status FROM broken_jobs;
CREATE TEMP TABLE before AS SELECT * FROM row_versions;
SELECT count(*) AS log_rows_before FROM finlive_reap_log WHERE target::text LIKE '%jobs' \gset
SELECT count(*) FROM (:all) e;
SELECT count(*) AS rows_changed
  FROM before b FULL JOIN row_versions j USING (target, id)
 WHERE (b.row_xmin, b.row_ctid, b.status) IS DISTINCT FROM (j.row_xmin, j.row_ctid, j.status);
SELECT count(*) - :log_rows_before AS log_rows_added FROM finlive_reap_log WHERE target::text LIKE '%jobs';
SELECT ticks, jobs_examined, reaped_total, finalizer_defers_total, errors_total FROM finlive_stats;
SELECT count(*) AS gate_calls_kept FROM gate_calls;
SELECT count(*) AS locks_left FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype IN ('advisory', 'tuple', 'transactionid');

-- The action is what the next tick does: a tick (rolled back) takes exactly
-- the actions explain gave, and leaves the others alone -- but for job 10,
-- whose on_reap fails (explain runs no on_reap: it cannot know until the
-- reap has failed once, below).
CREATE TEMP TABLE predicted AS
    SELECT target, id, e ->> 'action' AS action, (e ->> 'tier')::int AS tier
      FROM job_times, LATERAL (SELECT finlive_explain(target, id) AS e) x;
BEGIN;
CREATE TEMP TABLE ticked AS SELECT * FROM finlive_reap_once();
SELECT p.target, p.id, p.action AS explained, coalesce(t.action, 'none') AS ticked,
       p.tier AS explained_tier, t.tier AS ticked_tier
  FROM predicted p LEFT JOIN ticked t ON t.target = p.target AND t.job_id = p.id
 WHERE p.action IS DISTINCT FROM coalesce(t.action, 'none')
    OR (t.tier IS NOT NULL AND p.tier IS DISTINCT FROM t.tier);
ROLLBACK;
SELECT count(*) AS gate_calls_kept FROM gate_calls;

-- The kill-switch in force: ownership ignored, and said so.
SET finlive.enabled = off;
\x on
SELECT (explain_job('jobs', 3)).*;
SELECT (explain_job('jobs', 8)).*;
\x off
SELECT finlive_explain('jobs', 3) -> 'policy' ->> 'enabled' AS policy_enabled;
SET finlive.enabled = on;
-- Dry run in force: the same decision, only logged.
SET finlive.dry_run = on;
\x on
SELECT (explain_job('jobs', 4)).*;
\x off
SET finlive.dry_run = off;
SELECT finlive_register('plain_jobs', 'runs', 'tasks', enabled => false, dry_run => true,
                        finalize_grace => '2 minutes', max_running => '1 hour');
\x on
SELECT (explain_job('plain_jobs', 22)).*;
\x off
-- The restart window: no reap that depends on ownership being absent
-- until it ends (Tier-1, Tier-2 of a guarded stage); the rest as usual.
SET finlive.restart_grace = 86400;
\x on
SELECT (explain_job('jobs', 13)).*;
SELECT (explain_job('jobs', 6)).*;
SELECT (explain_job('jobs', 4)).*;
\x off
-- The window ends restart_grace after the server started.
SELECT window_end BETWEEN pg_postmaster_start_time() + interval '1 day' AND now() + interval '1 day'
       AS window_end_after_start
  FROM (SELECT substring(finlive_explain('jobs', 13) ->> 'reason' FROM ' until (.*)$')::timestamptz
               AS window_end) w;
SET finlive.restart_grace = 0;

-- The last failed attempt: after a tick in which job 10's reap fails.
SET client_min_messages = error;
SELECT count(*) AS actions FROM finlive_reap_once();
RESET client_min_messages;
\x on
SELECT (explain_job('jobs', 10)).*;
\x off
SELECT e ->> 'reason' LIKE '%' || f.last_failed_at::text || ': ' || f.message || '%' AS names_last_failure
  FROM finlive_reap_errors f, LATERAL (SELECT finlive_explain('jobs', 10) AS e) x
 WHERE f.job_id = 10;
-- Reaped jobs are no longer running.
\x on
SELECT (explain_job('jobs', 4)).*;
\x off

-- A target that cannot be reaped: skipped, and why.
DROP FUNCTION advance_broken(bigint, integer, text);
CALL add_job('broken_jobs', 32, 'testing', 0, '10 minutes');
\x on
SELECT (explain_job('broken_jobs', 32)).*;
\x off
-- A table that is no target, and a job that does not exist.
SELECT finlive_explain('unregistered_jobs', 1);
SELECT finlive_explain('jobs', 12) ->> 'reason' AS no_such_job;
SELECT finlive_explain('jobs', NULL) IS NULL AS null_job;

-- A role that may not read the jobs table: 42501.  One that may: the answer.
CREATE ROLE regress_explain_reader;
GRANT USAGE ON SCHEMA explain_why TO regress_explain_reader;
SET ROLE regress_explain_reader;
SELECT finlive_explain('jobs', 3);
\echo SQLSTATE: :SQLSTATE
RESET ROLE;
GRANT SELECT ON jobs, runs, tasks TO regress_explain_reader;
SET ROLE regress_explain_reader;
SELECT finlive_explain('jobs', 3) ->> 'action' AS action_3;
RESET ROLE;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered,
       finlive_unregister('plain_jobs') AS unregistered_plain,
       finlive_unregister('broken_jobs') AS unregistered_broken;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA explain_why CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_explain_reader;
DROP ROLE regress_explain_reader;
