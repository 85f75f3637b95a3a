-- Rule: every reap calls on_reap(job_id, tier, new_status) exactly once, in
-- the reap's transaction (a rolled-back tick leaves no trace); a defer calls
-- nothing.  A Tier-2 finalization asks gate(job_id): true -> 'done', anything
-- else (false, NULL) -> requeue-or-fail, whatever the exit_code; the gate is
-- asked only when a job is finalized.  (The NOTIFY each reap sends is checked
-- by the isolation spec reaper_notify.)

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA hooks;
SET search_path = hooks, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE TABLE hook_calls (job_id bigint, tier integer, status text);
CREATE TABLE gate_calls (job_id bigint);
CREATE TABLE gate_answers (job_id bigint PRIMARY KEY, answer boolean);
CREATE FUNCTION on_reap(job_id bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO hooks.hook_calls VALUES (job_id, tier, status) $$;
CREATE FUNCTION gate(job_id bigint) RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO hooks.gate_calls VALUES (job_id);
    SELECT answer FROM hooks.gate_answers a WHERE a.job_id = gate.job_id;
$$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'on_reap(bigint, integer, text)',
                        gate => 'gate(bigint)',
                        claim_owned => true);
SELECT jobs, on_reap, gate FROM finlive_targets;

CALL add_job(1, 'testing', 1, '10 minutes');              -- gate true, exit 1
INSERT INTO gate_answers VALUES (1, true);
CALL add_job(2, 'testing', 0, '10 minutes');              -- gate false, exit 0
INSERT INTO gate_answers VALUES (2, false);
CALL add_job(3, 'testing', 0, '10 minutes');              -- gate NULL (no answer)
CALL add_job(4, 'deploy-staging', 0, '10 minutes');       -- deferred
SELECT owner_mark(4) > 0 AS finalizer_of_4_alive;
CALL add_job(5, 'testing', 0, '1 minute');                -- within grace
CALL add_job(6, 'development', NULL, NULL, '5 minutes');  -- Tier-1
CALL add_job(7, 'development', NULL, NULL, '2 hours');    -- Tier-3
SELECT owner_mark(7) > 0 AS stuck_owner_of_7;
INSERT INTO gate_answers SELECT g, true FROM generate_series(4, 7) g;

-- A tick that is rolled back leaves nothing: no status change, no hook call.
BEGIN;
SELECT count(*) AS reaps FROM finlive_reap_once() WHERE action <> 'deferred';
SELECT count(*) AS hook_calls_inside FROM hook_calls;
ROLLBACK;
SELECT count(*) AS hook_calls, (SELECT count(*) FROM gate_calls) AS gate_calls
  FROM hook_calls;
SELECT count(*) AS still_running FROM jobs WHERE status = 'running';

-- The real tick.
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT * FROM hook_calls ORDER BY job_id;
SELECT job_id, count(*) AS asked FROM gate_calls GROUP BY job_id ORDER BY job_id;

-- A second tick reaps nothing new and calls no hook again.
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT count(*) AS hook_calls FROM hook_calls;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA hooks CASCADE;
RESET client_min_messages;
