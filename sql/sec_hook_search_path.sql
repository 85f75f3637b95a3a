-- Rule [1.2] (hooks see the registrant's search_path): finlive_register
-- captures the search_path in effect in the registering session -- the
-- schemas it resolves to now ("$user" expanded, schemas that do not exist
-- dropped), as SET search_path FROM CURRENT keeps them -- followed by
-- pg_temp, and finlive_targets shows it.  The reaper calls the gate, on_reap
-- and the status update (with the triggers it fires) with that path: a hook
-- written as one writes any function (unqualified table names, no SET
-- search_path clause) works when the reaper calls it, exactly as when its
-- author calls it by hand, whatever the search_path of the session that
-- ticks.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA sec_path;
SET search_path = sec_path, public;
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
CREATE PROCEDURE add_job(id bigint, stage text, exit_code integer,
                         finished_ago interval,
                         started_ago interval DEFAULT '20 minutes',
                         attempts integer DEFAULT 0,
                         max_attempts integer DEFAULT 2)
LANGUAGE sql AS $$
    INSERT INTO sec_path.tasks VALUES (id, stage);
    INSERT INTO sec_path.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO sec_path.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
                                      now() - started_ago);
$$;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();

-- The hooks, written plainly: every name unqualified, no SET clause.
CREATE TABLE advances (job_id bigint, tier integer, status text);
CREATE TABLE vetoes (job_id bigint);
CREATE TABLE status_changes (job_id bigint, old_status text, new_status text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO advances VALUES (job, tier, status);
END
$$;
CREATE FUNCTION green(job bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT FROM vetoes WHERE job_id = job)
$$;
CREATE FUNCTION note_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_changes VALUES (NEW.id, OLD.status, NEW.status);
    RETURN NEW;
END
$$;
CREATE TRIGGER note_status AFTER UPDATE OF status ON jobs
    FOR EACH ROW EXECUTE FUNCTION note_status();

-- "$user" (no such schema here) is dropped, a missing schema is dropped,
-- pg_temp goes last.
SET search_path = "$user", sec_path, no_such_schema, public;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)',
                        gate => 'green(bigint)');
SELECT jobs, search_path FROM finlive_targets;

CALL add_job(1, 'testing', 0, '10 minutes');      -- gate true: done
CALL add_job(2, 'testing', 0, '10 minutes');      -- vetoed: queued
INSERT INTO vetoes VALUES (2);
CALL add_job(3, 'development', NULL, NULL, '2 hours');  -- Tier-3: queued

-- The tick runs under a search_path that sees none of the application's
-- tables: the hooks still find theirs.
SET search_path = pg_catalog;
SELECT * FROM public.finlive_reap_once() ORDER BY job_id, tier;
SET search_path = sec_path, public;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT * FROM advances ORDER BY job_id;
SELECT * FROM status_changes ORDER BY job_id;
SELECT job_id, tier, old_status, new_status FROM finlive_reap_log
 WHERE target = 'jobs'::regclass ORDER BY job_id;
SELECT errors_total = 0 AS no_errors FROM finlive_stats;

-- Exactly as when its author calls it by hand.
SELECT advance(99, 0, 'by hand');
SELECT * FROM advances WHERE job_id = 99;

-- The path is the one captured at registration: changing the session's
-- path later changes nothing; registering again captures the new one.
SET search_path = public, sec_path;
SELECT search_path FROM finlive_targets WHERE jobs = 'sec_path.jobs'::regclass;
SELECT finlive_register('sec_path.jobs', 'sec_path.runs', 'sec_path.tasks',
                        on_reap => 'sec_path.advance(bigint, integer, text)',
                        gate => 'sec_path.green(bigint)');
SELECT search_path FROM finlive_targets WHERE jobs = 'sec_path.jobs'::regclass;
SET search_path = sec_path, public;

-- Clean up.
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_path CASCADE;
RESET client_min_messages;
