-- Rule [1.2]: finlive_register refuses (42501, naming the schema and the
-- role) a search_path with a schema in which some role can create objects
-- that is not the registrant, a role whose privileges the registrant has,
-- the database owner or a superuser -- PUBLIC included: nobody else can put
-- an object in a hook's way.  A refused registration registers nothing.
-- Schemas that are only looked at (USAGE) are fine, and so are those where
-- only the trusted roles can create.

-- The application's tables, owned by the registrant, in a schema where only
-- a superuser creates objects.
CREATE ROLE regress_sec_registrant;
CREATE ROLE regress_sec_plain;
CREATE ROLE regress_sec_team;
GRANT regress_sec_team TO regress_sec_registrant;
CREATE SCHEMA sec_untrusted;
GRANT USAGE ON SCHEMA sec_untrusted TO regress_sec_registrant;
SET search_path = sec_untrusted, public;
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
ALTER TABLE tasks OWNER TO regress_sec_registrant;
ALTER TABLE runs OWNER TO regress_sec_registrant;
ALTER TABLE jobs OWNER TO regress_sec_registrant;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT oid FROM pg_proc
              WHERE proname IN ('finlive_register', 'finlive_unregister') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO regress_sec_registrant', f);
    END LOOP;
END
$$;

-- A second schema on the path, and who may create in it.
CREATE SCHEMA sec_shared;
GRANT USAGE ON SCHEMA sec_shared TO PUBLIC;
-- (public, where on PostgreSQL 15 only the database owner creates objects,
-- stays off the path until its own test below.)
SET ROLE regress_sec_registrant;
SET search_path = sec_untrusted, sec_shared;

-- Only USAGE for others: accepted.
SELECT public.finlive_register('jobs', 'runs', 'tasks');
SELECT jobs, registered_by, search_path FROM public.finlive_targets;
SELECT public.finlive_unregister('jobs');

-- A plain role may create there: refused, naming it and the schema.
RESET ROLE;
GRANT CREATE ON SCHEMA sec_shared TO regress_sec_plain;
SET ROLE regress_sec_registrant;
SELECT public.finlive_register('jobs', 'runs', 'tasks');
\echo SQLSTATE: :SQLSTATE
SELECT count(*) AS registered FROM public.finlive_targets;
RESET ROLE;
REVOKE CREATE ON SCHEMA sec_shared FROM regress_sec_plain;

-- Everyone may create there: refused, naming PUBLIC.
GRANT CREATE ON SCHEMA sec_shared TO PUBLIC;
SET ROLE regress_sec_registrant;
SELECT public.finlive_register('jobs', 'runs', 'tasks');
\echo SQLSTATE: :SQLSTATE
SELECT count(*) AS registered FROM public.finlive_targets;
-- The same schema, wherever it is on the path, even after "$user".
SET search_path = "$user", sec_shared, sec_untrusted;
SELECT public.finlive_register('jobs', 'runs', 'tasks');
\echo SQLSTATE: :SQLSTATE
RESET ROLE;
REVOKE CREATE ON SCHEMA sec_shared FROM PUBLIC;

-- A role whose privileges the registrant has may create there: accepted.
GRANT CREATE ON SCHEMA sec_shared TO regress_sec_team;
SET ROLE regress_sec_registrant;
SET search_path = sec_untrusted, sec_shared;
SELECT public.finlive_register('jobs', 'runs', 'tasks');
SELECT jobs, registered_by, search_path FROM public.finlive_targets;
SELECT public.finlive_unregister('jobs');
RESET ROLE;

-- But once another member of that role can create there too, refused.
GRANT regress_sec_team TO regress_sec_plain;
SET ROLE regress_sec_registrant;
SELECT public.finlive_register('jobs', 'runs', 'tasks');
\echo SQLSTATE: :SQLSTATE
RESET ROLE;
REVOKE regress_sec_team FROM regress_sec_plain;

-- The registrant's own schema: accepted.
CREATE SCHEMA sec_own AUTHORIZATION regress_sec_registrant;
SET ROLE regress_sec_registrant;
SET search_path = sec_own, sec_untrusted;
SELECT public.finlive_register('jobs', 'runs', 'tasks');
SELECT jobs, search_path FROM public.finlive_targets;
SELECT public.finlive_unregister('jobs');
RESET ROLE;

-- public, where on PostgreSQL 15 only the database owner can create
-- objects (through pg_database_owner, which owns it), and the default
-- search_path: accepted.
SET ROLE regress_sec_registrant;
SET search_path = sec_untrusted, public;
SELECT finlive_register('jobs', 'runs', 'tasks');
SELECT jobs, search_path FROM finlive_targets;
SELECT finlive_unregister('jobs');
RESET search_path;
SELECT finlive_register('sec_untrusted.jobs', 'sec_untrusted.runs', 'sec_untrusted.tasks');
SELECT jobs, search_path FROM finlive_targets;
SELECT finlive_unregister('sec_untrusted.jobs');
RESET ROLE;

-- Clean up.
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_untrusted, sec_shared, sec_own CASCADE;
RESET client_min_messages;
SELECT count(*) AS targets_left FROM finlive_targets;
DROP OWNED BY regress_sec_registrant;
DROP ROLE regress_sec_registrant, regress_sec_plain, regress_sec_team;
