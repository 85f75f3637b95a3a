-- Rule [1.2] (no role becomes another through finlive): the owner of a
-- database, who can create objects in public (on PostgreSQL 15), plants
-- public.finlive_is_active(text) -- the overload PostgreSQL prefers for a
-- bare NULL -- whose body would make it superuser.  No finlive function,
-- view or tick ever calls it: reading finlive_targets,
-- finlive_target_problems, finlive_running_jobs, finlive_audit and the rest,
-- as the database owner and as a superuser, and a superuser's
-- finlive_reap_once(), leave the database owner what it was, and nothing
-- fails.

-- The database is handed to a role that is no superuser.
CREATE ROLE regress_sec_dbo;
SELECT current_database() AS db,
       (SELECT datdba::regrole FROM pg_database WHERE datname = current_database()) AS dbowner
\gset
ALTER DATABASE :"db" OWNER TO regress_sec_dbo;

-- A target with jobs, registered by the superuser, so that every view has
-- rows to show.
CREATE SCHEMA sec_dbo;
SET search_path = sec_dbo, public;
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
GRANT USAGE ON SCHEMA sec_dbo TO regress_sec_dbo;
GRANT SELECT ON tasks, runs, jobs TO regress_sec_dbo;
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
CREATE FUNCTION fails(job bigint, tier integer, status text) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no advance for job %', job; END $$;
SELECT finlive_register('jobs', 'runs', 'tasks', on_reap => 'fails(bigint, integer, text)');
INSERT INTO tasks VALUES (1, 'deploy-staging'), (2, 'testing'), (3, 'testing');
INSERT INTO runs VALUES (1, now() - interval '10 minutes', 0),
                        (2, now() - interval '10 minutes', 0),
                        (3, NULL, NULL);
INSERT INTO jobs VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes'),
                        (2, 'running', 2, 2, 0, 2, now() - interval '20 minutes'),
                        (3, 'running', 3, 3, 0, 2, now() - interval '3 hours');
SELECT owner_mark(1, 1, 'deploy-staging') > 0 AS owns_1, owner_mark(99) > 0 AS owns_99;
SELECT * FROM finlive_reap_once() ORDER BY job_id;   -- 2 and 3 fail: failing reaps

-- The database owner plants its function in public, where it may create.
SET ROLE regress_sec_dbo;
CREATE TABLE public.sec_dbo_calls (called_as name, function text);
GRANT INSERT ON public.sec_dbo_calls TO PUBLIC;
CREATE FUNCTION public.finlive_is_active(job text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.sec_dbo_calls VALUES (current_user, 'finlive_is_active(text)');
    BEGIN
        ALTER ROLE regress_sec_dbo SUPERUSER;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN false;
END
$$;
GRANT EXECUTE ON FUNCTION public.finlive_is_active(text) TO PUBLIC;

-- Everything a reader can use, as the database owner ...
SELECT count(*) > 0 AS targets FROM finlive_targets;
SELECT count(*) >= 0 AS problems FROM finlive_target_problems();
SELECT count(*) > 0 AS running FROM finlive_running_jobs;
SELECT count(*) > 0 AS findings FROM finlive_audit();
SELECT count(*) > 0 AS failing FROM finlive_reap_errors;
SELECT count(*) > 0 AS owners FROM finlive_owners;
SELECT finlive_snapshot() ->> 'active' AS active;
SELECT ticks > 0 AS stats FROM finlive_stats;
SELECT finlive_explain('sec_dbo.jobs', 1) ->> 'action' AS explain_1;
SELECT finlive_is_active(1::bigint) AS active_1, finlive_fence(1, 0) AS fence_1;
RESET ROLE;

-- ... and as a superuser, ticking too.
SELECT count(*) > 0 AS targets FROM finlive_targets;
SELECT count(*) >= 0 AS problems FROM finlive_target_problems();
SELECT count(*) > 0 AS running FROM finlive_running_jobs;
SELECT count(*) > 0 AS findings FROM finlive_audit();
SELECT count(*) > 0 AS failing FROM finlive_reap_errors;
SELECT count(*) > 0 AS owners FROM finlive_owners;
SELECT finlive_snapshot() ->> 'active' AS active;
SELECT finlive_explain('sec_dbo.jobs', 1) ->> 'action' AS explain_1;
SET client_min_messages = error;   -- the failing hook's WARNINGs
SELECT * FROM finlive_reap_once() ORDER BY job_id;
RESET client_min_messages;

-- Nobody became superuser, and the planted function never ran.
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_sec_dbo';
SELECT * FROM public.sec_dbo_calls;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_dbo CASCADE;
RESET client_min_messages;
DROP FUNCTION public.finlive_is_active(text);
DROP TABLE public.sec_dbo_calls;
ALTER DATABASE :"db" OWNER TO :"dbowner";
DROP OWNED BY regress_sec_dbo;
DROP ROLE regress_sec_dbo;
