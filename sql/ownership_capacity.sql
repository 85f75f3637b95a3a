-- Rule: the ownership registry holds finlive.max_owners owners (default
-- 10000).  A first mark beyond that is an ERROR with SQLSTATE 53400 whose
-- hint names finlive.max_owners; it takes nothing (no lock left behind), and
-- the owners already registered are unaffected.  Releasing makes room again.
SHOW finlive.max_owners;
SELECT count(finlive_mark(g)) AS marked
  FROM generate_series(1000001, 1010000) g;
SELECT finlive_mark(1010001);
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(1010001) AS active_after_error;
SELECT count(*) AS finlive_lock_rows
  FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 7966 AND pid = pg_backend_pid();
-- The owner marking a job it already owns is not a new registration.
SELECT finlive_mark(1000001, 5, 'again') > 0 AS remark_ok;
SELECT (finlive_snapshot() ->> 'active')::int AS active;
SELECT finlive_clear(1000001) AS cleared;
SELECT finlive_mark(1010001) > 0 AS room_again;
SELECT finlive_clear_all() AS released;
SELECT count(*) AS owners_left FROM finlive_owners;
