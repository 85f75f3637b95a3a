-- Rule: targets are named by regclass, so any table name works: a schema and
-- tables whose names need quoting (spaces, capitals, quotes, a semicolon)
-- are registered, reaped and reported correctly, and nothing in their names
-- is ever executed.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA quoting;
SET search_path = quoting, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE SCHEMA "Odd ""Schema""";
CREATE TABLE "Odd ""Schema"""."Jobs; drop table tasks" (LIKE jobs INCLUDING INDEXES);
CREATE TABLE "Odd ""Schema"""."Runs'" (LIKE runs);
CREATE TABLE "Odd ""Schema""".";Tasks" (LIKE tasks);
CREATE FUNCTION "Odd ""Schema"""."on Reap"(bigint, integer, text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO quoting.tasks VALUES ($1, $3) $$;
SELECT finlive_register('"Odd ""Schema"""."Jobs; drop table tasks"',
                        '"Odd ""Schema"""."Runs''"',
                        '"Odd ""Schema""".";Tasks"',
                        on_reap => '"Odd ""Schema"""."on Reap"(bigint, integer, text)');
SELECT jobs, runs, tasks, on_reap FROM finlive_targets;

INSERT INTO "Odd ""Schema""".";Tasks" VALUES (1, 'deploy-staging'), (2, 'testing');
INSERT INTO "Odd ""Schema"""."Runs'" VALUES (1, now() - interval '10 minutes', 0),
                                            (2, now() - interval '10 minutes', 0);
INSERT INTO "Odd ""Schema"""."Jobs; drop table tasks"
    VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes'),
           (2, 'running', 2, 2, 0, 2, now() - interval '20 minutes');
SELECT owner_mark(1) > 0 AS finalizer_of_1_alive;

SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM "Odd ""Schema"""."Jobs; drop table tasks" ORDER BY id;
SELECT * FROM tasks ORDER BY id;   -- the hook's trace, and tasks still exists
SELECT target, job_id, tier, new_status FROM finlive_reap_log
 WHERE target = '"Odd ""Schema"""."Jobs; drop table tasks"'::regclass;
DELETE FROM finlive_reap_log
 WHERE target = '"Odd ""Schema"""."Jobs; drop table tasks"'::regclass;
SELECT finlive_unregister('"Odd ""Schema"""."Jobs; drop table tasks"') AS unregistered;
SET client_min_messages = warning;
DROP SCHEMA "Odd ""Schema""" CASCADE;
RESET client_min_messages;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA quoting CASCADE;
RESET client_min_messages;
