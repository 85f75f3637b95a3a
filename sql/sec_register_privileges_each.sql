-- Rule [1.2]: the reaper reads and updates a target's tables as the role
-- that registered it, so finlive_register checks each privilege it will
-- need on its own: SELECT and UPDATE on jobs, SELECT on runs and on tasks.
-- A role that lacks one is refused with 42501 naming the table -- a role
-- with only SELECT on jobs cannot register a table it could never reap --
-- and nothing is registered.

-- The application's tables, owned by a superuser, in a schema the
-- registering role may use.
CREATE ROLE regress_sec_reader;
CREATE SCHEMA sec_each;
GRANT USAGE ON SCHEMA sec_each TO regress_sec_reader;
SET search_path = sec_each;
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
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT oid FROM pg_proc
              WHERE proname IN ('finlive_register', 'finlive_unregister') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO regress_sec_reader', f);
    END LOOP;
END
$$;
\set register 'SELECT public.finlive_register(''jobs'', ''runs'', ''tasks'')'
\set targets 'SELECT jobs, registered_by FROM public.finlive_targets'

-- SELECT on every table, no UPDATE on jobs: refused, naming jobs.
GRANT SELECT ON jobs, runs, tasks TO regress_sec_reader;
SET ROLE regress_sec_reader;
:register;
\echo SQLSTATE: :SQLSTATE
:targets;
RESET ROLE;

-- UPDATE on jobs but no SELECT: refused, naming jobs.
REVOKE SELECT ON jobs FROM regress_sec_reader;
GRANT UPDATE ON jobs TO regress_sec_reader;
SET ROLE regress_sec_reader;
:register;
\echo SQLSTATE: :SQLSTATE
RESET ROLE;

-- Everything on jobs, nothing on runs: refused, naming runs.
GRANT SELECT ON jobs TO regress_sec_reader;
REVOKE SELECT ON runs FROM regress_sec_reader;
SET ROLE regress_sec_reader;
:register;
\echo SQLSTATE: :SQLSTATE
RESET ROLE;

-- Nothing on tasks: refused, naming tasks.
GRANT SELECT ON runs TO regress_sec_reader;
REVOKE SELECT ON tasks FROM regress_sec_reader;
SET ROLE regress_sec_reader;
:register;
\echo SQLSTATE: :SQLSTATE
:targets;
RESET ROLE;

-- SELECT and UPDATE on jobs, SELECT on runs and tasks: accepted.
GRANT SELECT ON tasks TO regress_sec_reader;
SET ROLE regress_sec_reader;
:register;
:targets;
SELECT public.finlive_unregister('jobs') AS unregistered;
RESET ROLE;

-- Clean up.
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_each CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_sec_reader;
DROP ROLE regress_sec_reader;
