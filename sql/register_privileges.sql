-- Rule: administration (finlive_register, finlive_unregister,
-- finlive_reap_once, finlive_stats_reset) is revoked from PUBLIC; GRANT
-- EXECUTE is all a role needs to use it (no grant on finlive's internal
-- tables).  A role can unregister only the targets it registered, unless it
-- is a superuser.
-- (Each role owns its tables, in a schema where only a superuser creates
-- objects: [1.2] a role may not register from a search_path with a schema in
-- which another role can create objects.)
CREATE ROLE regress_finlive_alice;
CREATE ROLE regress_finlive_bob;
CREATE SCHEMA regpriv;
GRANT USAGE ON SCHEMA regpriv TO regress_finlive_alice, regress_finlive_bob;
SET search_path = regpriv, public;
CREATE TABLE alice_jobs (id bigint, status text, run_id bigint, task_id bigint,
                         attempts integer, max_attempts integer, started_at timestamptz);
CREATE TABLE alice_runs (id bigint, finished_at timestamptz, exit_code integer);
CREATE INDEX ON alice_jobs (status);
ALTER TABLE alice_jobs OWNER TO regress_finlive_alice;
ALTER TABLE alice_runs OWNER TO regress_finlive_alice;
CREATE TABLE bob_jobs (id bigint, status text, run_id bigint, task_id bigint,
                       attempts integer, max_attempts integer, started_at timestamptz);
CREATE TABLE bob_runs (id bigint, finished_at timestamptz, exit_code integer);
CREATE INDEX ON bob_jobs (status);
ALTER TABLE bob_jobs OWNER TO regress_finlive_bob;
ALTER TABLE bob_runs OWNER TO regress_finlive_bob;

SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_finlive_alice', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND p.proname IN ('finlive_register', 'finlive_unregister',
                     'finlive_reap_once', 'finlive_stats_reset')
 ORDER BY 1::text;

SET ROLE regress_finlive_alice;
SELECT finlive_register('alice_jobs', 'alice_runs', guarded_stages => '{*}');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_unregister('alice_jobs');
\echo SQLSTATE: :SQLSTATE
SELECT * FROM finlive_reap_once();
\echo SQLSTATE: :SQLSTATE
SELECT finlive_stats_reset();
\echo SQLSTATE: :SQLSTATE
RESET ROLE;

GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass,
                                           regprocedure, regprocedure, boolean,
                                           interval, interval, interval, text[],
                                           boolean, boolean),
                          finlive_unregister(regclass),
                          finlive_reap_once(),
                          finlive_stats_reset()
   TO regress_finlive_alice, regress_finlive_bob;

SET ROLE regress_finlive_alice;
SELECT finlive_register('alice_jobs', 'alice_runs', guarded_stages => '{*}');
SELECT count(*) AS actions FROM finlive_reap_once();
SELECT finlive_stats_reset();
SET ROLE regress_finlive_bob;
SELECT finlive_register('bob_jobs', 'bob_runs', guarded_stages => '{*}');
SELECT jobs, registered_by FROM finlive_targets ORDER BY jobs::text;

-- Bob cannot register a table he may not read and update ...
SELECT finlive_register('alice_jobs', 'bob_runs', guarded_stages => '{*}');
\echo SQLSTATE: :SQLSTATE
-- ... and even when he may, he cannot replace Alice's registration.
SET ROLE regress_finlive_alice;
GRANT SELECT, UPDATE ON alice_jobs TO regress_finlive_bob;
SET ROLE regress_finlive_bob;
SELECT finlive_register('alice_jobs', 'bob_runs', guarded_stages => '{*}');
\echo SQLSTATE: :SQLSTATE
SELECT jobs, runs, registered_by FROM finlive_targets ORDER BY jobs::text;

-- Bob cannot unregister Alice's target; it stays.
SELECT finlive_unregister('alice_jobs');
\echo SQLSTATE: :SQLSTATE
SELECT jobs FROM finlive_targets ORDER BY jobs::text;
SELECT finlive_unregister('bob_jobs') AS bob_unregisters_his_own;
RESET ROLE;

-- A superuser can unregister anyone's.
SELECT finlive_unregister('alice_jobs') AS superuser_unregisters;
SELECT count(*) AS targets_left FROM finlive_targets;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA regpriv CASCADE;
RESET client_min_messages;
REVOKE EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass,
                                            regprocedure, regprocedure, boolean,
                                            interval, interval, interval, text[],
                                            boolean, boolean),
                           finlive_unregister(regclass),
                           finlive_reap_once(),
                           finlive_stats_reset()
   FROM regress_finlive_alice, regress_finlive_bob;
DROP ROLE regress_finlive_alice;
DROP ROLE regress_finlive_bob;
