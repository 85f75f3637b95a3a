-- The lock-room row: how many locks can this session still take?  It takes
-- transaction-level advisory locks (the application's key space, objsubid
-- 1: never finlive's) one after another until the lock table has no room
-- ("out of shared memory", 53200), and returns how many it held; the
-- subtransaction's rollback then releases them all.
CREATE FUNCTION bench_lock_room() RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    n bigint := 0;
BEGIN
    BEGIN
        LOOP
            PERFORM pg_advisory_xact_lock(n + 1);
            n := n + 1;
        END LOOP;
    EXCEPTION WHEN out_of_memory THEN
        RETURN n;
    END;
END;
$fn$;
