-- Rule: the reaper's queries run with a search_path that no other role can
-- hijack: objects that another role put first on the caller's search_path
-- (an "=" operator for text that is always true, a now() that returns the
-- far future) change nothing in what the reaper sees and decides.

-- The application's tables, in a schema of their own.  add_job() inserts a
-- running job with its task (in stage) and its run (ended finished_ago ago
-- with exit_code; both NULL while the run is still going).
CREATE SCHEMA tier_sp;
SET search_path = tier_sp, public;
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
-- The index finlive_register recommends for the reaper's candidate query.
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE PROCEDURE add_job(id bigint, stage text, exit_code integer,
                         finished_ago interval,
                         started_ago interval DEFAULT '20 minutes',
                         attempts integer DEFAULT 0,
                         max_attempts integer DEFAULT 2)
LANGUAGE sql AS $$
    INSERT INTO tier_sp.tasks VALUES (id, stage);
    INSERT INTO tier_sp.runs VALUES (id, now() - finished_ago, exit_code);
    INSERT INTO tier_sp.jobs VALUES (id, 'running', id, id, attempts, max_attempts,
                                 now() - started_ago);
$$;
-- Every setting the reaper reads, pinned for this file.
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 300;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.restart_grace = 0;
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks');

CREATE ROLE regress_finlive_mallory;
CREATE SCHEMA trap AUTHORIZATION regress_finlive_mallory;
SET ROLE regress_finlive_mallory;
CREATE FUNCTION trap.text_eq(text, text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.text_eq);
CREATE FUNCTION trap.now() RETURNS timestamptz
    LANGUAGE sql STABLE AS $$ SELECT timestamptz '2999-01-01' $$;
RESET ROLE;

CALL add_job(1, 'testing', 0, '1 minute');               -- within grace
CALL add_job(2, 'development', NULL, NULL, '10 minutes'); -- young, no Tier-1
CALL add_job(3, 'testing', 0, '10 minutes');
UPDATE jobs SET status = 'queued' WHERE id = 3;           -- not running

SET search_path = trap, pg_catalog, tier_sp, public;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
RESET search_path;
SET search_path = tier_sp, public;
SELECT id, status, attempts FROM jobs ORDER BY id;
:counters;

SET client_min_messages = warning;
DROP SCHEMA trap CASCADE;
RESET client_min_messages;
DROP ROLE regress_finlive_mallory;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tier_sp CASCADE;
RESET client_min_messages;
