-- Rule [1.2]: a hook in a temporary schema is refused at registration
-- (42P13, naming the function): a temporary function belongs to one session
-- and can be replaced by whoever gets that temporary schema next.  This
-- holds for on_reap and gate alike, however the function is named (pg_temp
-- or the session's own pg_temp_N), and a refused registration registers
-- nothing (nor replaces an existing registration).

-- The application's tables, in a schema of their own.
CREATE SCHEMA sec_temp;
SET search_path = sec_temp, public;
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

CREATE FUNCTION pg_temp.advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS 'SELECT';
CREATE FUNCTION pg_temp.green(job bigint) RETURNS boolean
LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS 'SELECT';
-- The error of a statement, with the session's temporary schema (pg_temp_N,
-- a different N in each run) written pg_temp_N.
CREATE FUNCTION error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN regexp_replace(format('%s: %s (%s)', SQLSTATE, SQLERRM, detail),
                          'pg_temp_[0-9]+', 'pg_temp_N', 'g');
END
$$;

SELECT error_of($$SELECT finlive_register('jobs', 'runs', 'tasks',
                         on_reap => 'pg_temp.advance(bigint, integer, text)')$$);
SELECT error_of($$SELECT finlive_register('jobs', 'runs', 'tasks',
                         gate => 'pg_temp.green(bigint)')$$);
-- The same function under the name of its real schema.
SELECT format('%I.green(bigint)', nspname) AS temp_green
  FROM pg_namespace WHERE oid = pg_my_temp_schema() \gset
SELECT error_of(format($$SELECT finlive_register('jobs', 'runs', 'tasks', gate => %L)$$,
                       :'temp_green'));
SELECT count(*) AS registered FROM finlive_targets;

-- A registration with a permanent hook is not replaced by a refused one.
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)');
SELECT error_of($$SELECT finlive_register('jobs', 'runs', 'tasks',
                         on_reap => 'pg_temp.advance(bigint, integer, text)')$$);
SELECT jobs, on_reap, gate FROM finlive_targets;

-- Clean up.
SELECT finlive_unregister('jobs') AS unregistered;
DROP FUNCTION pg_temp.advance(bigint, integer, text), pg_temp.green(bigint);
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_temp CASCADE;
RESET client_min_messages;
