-- Rule: reading ownership (finlive_is_active, finlive_fence, finlive_owners,
-- finlive_snapshot, finlive_stats) is open to PUBLIC; taking and releasing
-- it (finlive_mark, finlive_clear, finlive_clear_all) is revoked from PUBLIC.
-- GRANT EXECUTE on those functions is all a role needs: no grant on any of
-- finlive's internal tables.
CREATE ROLE regress_finlive_reader;
CREATE ROLE regress_finlive_worker;

SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_finlive_reader', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND p.proname IN ('finlive_mark', 'finlive_clear', 'finlive_clear_all',
                     'finlive_is_active', 'finlive_fence', 'finlive_owners',
                     'finlive_snapshot', 'finlive_stats')
 ORDER BY 1::text;

-- A role with no grant can read but not take ownership.
SET ROLE regress_finlive_reader;
SELECT finlive_mark(161);
\echo SQLSTATE: :SQLSTATE
SELECT finlive_clear(161);
\echo SQLSTATE: :SQLSTATE
SELECT finlive_clear_all();
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(161) AS active, finlive_fence(161, 1) AS fence;
SELECT count(*) AS owners_view FROM finlive_owners;
SELECT count(*) AS owners_function FROM finlive_owners();
SELECT finlive_snapshot() -> 'active' AS snapshot_active;
SELECT count(*) AS stats_view FROM finlive_stats;
SELECT count(*) AS stats_function FROM finlive_stats();
RESET ROLE;

-- The administrator grants EXECUTE; nothing else is needed.
GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text),
                          finlive_clear(bigint),
                          finlive_clear_all() TO regress_finlive_worker;
SET ROLE regress_finlive_worker;
SELECT finlive_mark(161, 1, 'deploy-staging') > 0 AS marked;
SELECT job_id, run_id, stage, pid = pg_backend_pid() AS mine FROM finlive_owners;
SELECT finlive_clear(161) AS cleared;
SELECT finlive_mark(162) > 0 AS marked;
SELECT finlive_clear_all() AS released;
RESET ROLE;

-- Ownership belongs to the session, not to the role: the same session
-- under another role sees it, and clears it as superuser.
SET ROLE regress_finlive_worker;
SELECT finlive_mark(163) > 0 AS marked;
SET ROLE regress_finlive_reader;
SELECT finlive_is_active(163) AS reader_sees_it;
RESET ROLE;
SELECT finlive_clear(163) AS cleared_by_same_session;

REVOKE EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text),
                           finlive_clear(bigint),
                           finlive_clear_all() FROM regress_finlive_worker;
DROP ROLE regress_finlive_reader;
DROP ROLE regress_finlive_worker;
