-- Rule: a session holds at most one finlive lock per job.  Marking twice
-- (or many times) and clearing once leaves the job free: no re-entrant
-- second lock count that would leak.
SELECT finlive_mark(121) > 0 AS first_mark;
SELECT finlive_mark(121) > 0 AS second_mark;
SELECT finlive_mark(121, 1, 'x') > 0 AS third_mark;
SELECT count(*) AS finlive_lock_rows
  FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 7966 AND pid = pg_backend_pid();

SELECT finlive_clear(121) AS cleared_once;
SELECT finlive_is_active(121) AS still_active;
SELECT count(*) AS finlive_lock_rows
  FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 7966 AND pid = pg_backend_pid();
SELECT finlive_clear(121) AS nothing_left_to_clear;

-- The same through finlive_clear_all: one job counted once.
SELECT finlive_mark(122) > 0 AS first_mark, finlive_mark(122) > 0 AS second_mark;
SELECT finlive_clear_all() AS released;
SELECT finlive_is_active(122) AS still_active;
