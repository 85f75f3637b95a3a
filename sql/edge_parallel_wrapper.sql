-- Rule [1.2] (parallel query): a finlive function reached from a parallel
-- worker -- here through PARALLEL SAFE plpgsql wrappers, with
-- force_parallel_mode on -- either answers exactly as in the leader or
-- raises 0A000; it never changes or forgets any session's ownership.  A
-- parallel worker belongs to its leader's lock group, so it must never take
-- the leader's own lock for another owner's (and so think the owner dead).
-- This finlive raises 0A000, with a hint to mark the wrapper PARALLEL
-- RESTRICTED or UNSAFE.

-- (error CONTEXT lines differ between PostgreSQL versions)
\set SHOW_CONTEXT never
CREATE SCHEMA edge_par;
SET search_path = edge_par, public;
CREATE FUNCTION is_owned(job bigint) RETURNS boolean
LANGUAGE plpgsql PARALLEL SAFE AS $$ BEGIN RETURN finlive_is_active(job); END $$;
CREATE FUNCTION take(job bigint) RETURNS bigint
LANGUAGE plpgsql PARALLEL SAFE AS $$ BEGIN RETURN finlive_mark(job, 1, 'parallel'); END $$;
CREATE FUNCTION fenced(job bigint, token bigint) RETURNS boolean
LANGUAGE plpgsql PARALLEL SAFE AS $$ BEGIN RETURN finlive_fence(job, token); END $$;
CREATE FUNCTION owner_count() RETURNS bigint
LANGUAGE plpgsql PARALLEL SAFE AS $$ BEGIN RETURN (SELECT count(*) FROM finlive_owners()); END $$;
-- The caller's own finlive locks, as pg_locks shows them.
CREATE VIEW my_finlive_locks AS
    SELECT objid FROM pg_locks
     WHERE locktype = 'advisory' AND objsubid = 7966 AND pid = pg_backend_pid();

-- This session owns job 44; the owner session owns job 45.
SELECT finlive_mark(44, 1, 'deploy-staging') AS token_44 \gset
SELECT owner_mark(45, 1, 'deploy-staging') > 0 AS owner_owns_45;

-- Every query runs in a parallel worker from now on (force_parallel_mode
-- on PostgreSQL 15, debug_parallel_query from 16).
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET max_parallel_workers_per_gather = 2;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'on', false) AS parallel_mode;
SELECT is_owned(44) AS own_job;
\echo SQLSTATE: :SQLSTATE
SELECT is_owned(45) AS other_sessions_job;
\echo SQLSTATE: :SQLSTATE
SELECT is_owned(46) AS nobodys_job;
\echo SQLSTATE: :SQLSTATE
SELECT take(46) AS mark_in_worker;
\echo SQLSTATE: :SQLSTATE
SELECT fenced(44, :token_44) AS fence_in_worker;
\echo SQLSTATE: :SQLSTATE
SELECT owner_count() AS owners_in_worker;
\echo SQLSTATE: :SQLSTATE
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'off', false) AS parallel_mode;

-- Nothing was forgotten or taken: both owners are listed and active, the
-- lock is still this session's, another session cannot take job 44, and
-- job 46 is nobody's.
SELECT job_id, stage, pid = pg_backend_pid() AS mine FROM finlive_owners ORDER BY job_id;
SELECT finlive_is_active(44) AS active_44, finlive_is_active(45) AS active_45,
       finlive_is_active(46) AS active_46;
SELECT finlive_fence(44, :token_44) AS fence_44;
SELECT * FROM my_finlive_locks;
SELECT owner_sql('SELECT finlive_is_active(44)::text') AS active_44_seen_by_other,
       owner_mark(44) IS NULL AS other_cannot_take_44;

-- The same wrappers in the leader (parallel mode off) answer normally.
SELECT is_owned(44) AS own_job, is_owned(45) AS other_sessions_job,
       is_owned(46) AS nobodys_job, owner_count() AS owners;

-- Released once, gone: no lock left behind that nobody can see.
SELECT finlive_clear(44) AS cleared_44;
SELECT finlive_is_active(44) AS active_44;
SELECT * FROM my_finlive_locks;
SELECT owner_mark(44) > 0 AS other_can_take_44_now;

-- Clean up.
SELECT owner_clear_all() AS released;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET max_parallel_workers_per_gather;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_par CASCADE;
RESET client_min_messages;
