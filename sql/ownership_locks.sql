-- Rule: ownership is a session-level advisory lock in finlive's own key
-- space: pg_locks shows it with locktype 'advisory', objsubid 7966 (neither
-- 1 nor 2, the values of pg_advisory_lock(bigint) and (int, int)), mode
-- ExclusiveLock, granted, in the current database, with the job id split
-- into classid (high 32 bits) and objid (low 32 bits).  The application's own
-- advisory locks on the same numbers never touch it.
SELECT finlive_mark(4294967301) > 0 AS marked;   -- 2^32 + 5
SELECT locktype, classid, objid, objsubid, mode, granted,
       database = (SELECT oid FROM pg_database
                    WHERE datname = current_database()) AS this_database
  FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory';

-- The application's advisory locks on the same key are separate locks.
SELECT pg_advisory_lock(4294967301), pg_advisory_lock(1, 5);
SELECT objsubid, classid, objid
  FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory'
 ORDER BY objsubid;
SELECT pg_advisory_unlock(4294967301) AS app_unlock,
       pg_advisory_unlock(1, 5) AS app_unlock_2;
SELECT finlive_is_active(4294967301) AS still_owned;
-- ... and unlocking them again finds nothing: finlive's lock is not theirs.
SELECT pg_advisory_unlock(4294967301) AS app_unlock_again;

SELECT finlive_clear(4294967301) AS cleared;
SELECT count(*) AS advisory_locks_left
  FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory';
