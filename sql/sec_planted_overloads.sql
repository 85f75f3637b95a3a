-- Rule [1.2] (no role becomes another through finlive): whatever objects
-- other roles put in any schema -- overloads of finlive's functions with an
-- extra defaulted argument (public.finlive_is_active(bigint, integer
-- DEFAULT 0), public.finlive_owners(integer DEFAULT 0)), tables that shadow
-- finlive's and the catalog's by name, on the search_path of the session
-- that ticks -- no tick, view, diagnostic or audit calls them, resolves to
-- them or fails because of them.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA sec_planted;
SET search_path = sec_planted, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE TABLE advances (job_id bigint, tier integer, status text);
CREATE FUNCTION advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO advances VALUES (job, tier, status) $$;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'advance(bigint, integer, text)', claim_owned => true);

CALL add_job(1, 'testing', 0, '10 minutes');               -- Tier-2: done
CALL add_job(2, 'deploy-staging', 0, '10 minutes');        -- owned: deferred
CALL add_job(3, 'development', NULL, NULL, '5 minutes');   -- owned: left alone
CALL add_job(4, 'development', NULL, NULL, '5 minutes');   -- Tier-1: queued
CALL add_job(5, 'development', NULL, NULL, '3 hours');     -- owned, Tier-3: queued
SELECT owner_mark(2, 2, 'deploy-staging') > 0 AS owns_2,
       owner_mark(3, 3, 'development') > 0 AS owns_3,
       owner_mark(5, 5, 'development') > 0 AS owns_5;

-- What the planted objects do when called: note it.
CREATE TABLE public.planted_calls (what text);
GRANT INSERT ON public.planted_calls TO PUBLIC;

-- In public: overloads with an extra defaulted argument (a call by name
-- with one argument becomes ambiguous, or resolves to the planted one).
CREATE FUNCTION public.finlive_is_active(job bigint, extra integer DEFAULT 0)
RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO public.planted_calls VALUES ('finlive_is_active(bigint, integer)') RETURNING false
$$;
CREATE FUNCTION public.finlive_owners(extra integer DEFAULT 0)
RETURNS SETOF record LANGUAGE sql AS $$
    INSERT INTO public.planted_calls VALUES ('finlive_owners(integer)') RETURNING NULL::record
$$;

-- In a schema of another role, put first on the ticking session's path:
-- tables named like finlive's and the catalog's, and the same overloads.
CREATE ROLE regress_sec_mallory;
CREATE SCHEMA sec_trap AUTHORIZATION regress_sec_mallory;
SET ROLE regress_sec_mallory;
CREATE TABLE sec_trap.finlive_target (jobs regclass, runs regclass);
CREATE TABLE sec_trap.finlive_reap_log (at timestamptz);
CREATE TABLE sec_trap.finlive_owners (job_id bigint);
CREATE TABLE sec_trap.pg_stat_activity (pid integer, state text);
CREATE TABLE sec_trap.pg_locks (pid integer);
CREATE TABLE sec_trap.jobs (id bigint, status text);
CREATE TABLE sec_trap.runs (id bigint);
CREATE FUNCTION sec_trap.finlive_is_active(job bigint, extra integer DEFAULT 0)
RETURNS boolean LANGUAGE sql AS $$
    INSERT INTO public.planted_calls VALUES ('sec_trap.finlive_is_active') RETURNING false
$$;
CREATE FUNCTION sec_trap.now() RETURNS timestamptz LANGUAGE sql AS $$
    INSERT INTO public.planted_calls VALUES ('sec_trap.now') RETURNING timestamptz '2999-01-01'
$$;
RESET ROLE;

SET search_path = sec_trap, public, sec_planted;
SELECT * FROM public.finlive_reap_once() ORDER BY job_id;
SELECT * FROM public.finlive_reap_once() ORDER BY job_id;
SET search_path = sec_planted, public;
SELECT id, status, attempts FROM jobs ORDER BY id;
SELECT * FROM advances ORDER BY job_id;
:counters;

-- Every view and diagnostic, from the trapped path.
SET search_path = sec_trap, public, sec_planted;
SELECT jobs, on_reap FROM public.finlive_targets;
SELECT job_id, stage FROM public.finlive_owners ORDER BY job_id;
SELECT * FROM public.finlive_target_problems();
SELECT job_id, stage, guarded, owner_pid IS NOT NULL AS owned
  FROM public.finlive_running_jobs ORDER BY job_id;
SELECT reason, job_id FROM public.finlive_audit() ORDER BY reason, job_id;
SELECT count(*) AS failing FROM public.finlive_reap_errors;
SELECT public.finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total' AS snapshot;
SELECT ticks, reaped_total FROM public.finlive_stats;
SELECT public.finlive_explain('sec_planted.jobs', 2) ->> 'action' AS explain_2,
       public.finlive_explain('sec_planted.jobs', 2) -> 'owner' ->> 'job_id' AS explain_2_owner;
SELECT public.finlive_is_active(2::bigint, 0) AS planted_call_by_hand;   -- the user's own call
SET search_path = sec_planted, public;

-- Only the call made by hand reached a planted function.
SELECT what, count(*) FROM public.planted_calls GROUP BY what ORDER BY what;

-- Clean up.
SELECT owner_clear_all() AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sec_planted, sec_trap CASCADE;
RESET client_min_messages;
DROP FUNCTION public.finlive_is_active(bigint, integer), public.finlive_owners(integer);
DROP TABLE public.planted_calls;
DROP ROLE regress_sec_mallory;
