-- Rule [1.2]: ownership never takes lock-table room from the rest of the
-- server: with finlive.max_owners jobs owned, another session can still
-- take all the locks the server's own settings make room for
-- (max_locks_per_transaction times the number of backends).  With
-- finlive.max_owners jobs owned, one more first mark raises 53400 whose
-- hint names finlive.max_owners (the registry is full).  When a mark
-- finds no room in the lock table all the same (another session filled it),
-- finlive_mark raises 53400 with a hint that names finlive.max_owners and
-- max_locks_per_transaction, and changes nothing; a mark of a job the
-- session already owns needs no room and still works.  Room made again,
-- the mark succeeds.

CREATE SCHEMA edge_room;
SET search_path = edge_room, public;
-- fill(n): take up to n session-level advisory locks, stopping at the first
-- "out of shared memory"; how many it took.  (Session locks stay when the
-- block's subtransaction is rolled back.)
CREATE FUNCTION fill(n integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    got integer := 0;
BEGIN
    BEGIN
        FOR i IN 1..n LOOP
            PERFORM pg_advisory_lock(i);
            got := i;
        END LOOP;
    EXCEPTION WHEN out_of_memory THEN
        NULL;
    END;
    RETURN got;
END
$$;
SELECT dblink_connect('filler', format('dbname=%s host=%s port=%s application_name=filler',
       current_database(), split_part(current_setting('unix_socket_directories'), ',', 1),
       current_setting('port'))) AS filler;
-- The room the server's settings make in the lock table.
SELECT current_setting('max_locks_per_transaction')::int
       * (current_setting('max_connections')::int
          + current_setting('autovacuum_max_workers')::int + 1
          + current_setting('max_worker_processes')::int
          + current_setting('max_wal_senders')::int
          + current_setting('max_prepared_transactions')::int) AS server_room,
       current_setting('finlive.max_owners')::int AS max_owners
\gset

-- finlive.max_owners jobs owned by the owner session: another session still
-- takes all of the server's room.
SELECT owner_sql(format('SELECT count(finlive_mark(g))::text FROM generate_series(1, %s) g',
                        :max_owners))::int = :max_owners AS owner_owns_max_owners;
SELECT r = :server_room AS filler_took_server_room
  FROM dblink('filler', format('SELECT edge_room.fill(%s)', :server_room)) AS t(r integer);
-- One owner more than finlive.max_owners: the registry is full.
SELECT finlive_mark(:max_owners + 1);
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(:max_owners + 1) AS active;
SELECT r FROM dblink('filler', 'SELECT pg_advisory_unlock_all()::text') AS t(r text);
SELECT owner_clear_all() = :max_owners AS owner_released;

-- Job 2 owned here; then the lock table is filled up by the filler.
SELECT finlive_mark(2, 1, 'before') AS token_2 \gset
SELECT r > :server_room AS filler_filled_the_table
  FROM dblink('filler', 'SELECT edge_room.fill(10000000)') AS t(r integer);
SELECT finlive_mark(1);
\echo SQLSTATE: :SQLSTATE
-- Nothing taken, nothing registered.
SELECT finlive_is_active(1) AS active_1;
SELECT count(*) AS locks_of_1 FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 7966 AND objid = 1;
SELECT job_id, stage FROM finlive_owners ORDER BY job_id;
-- The job already owned: marking it again needs no room.
SELECT finlive_mark(2, 2, 'again') = :token_2 AS remark_same_token;
SELECT job_id, run_id, stage FROM finlive_owners ORDER BY job_id;

-- Room again: the mark succeeds.
SELECT r FROM dblink('filler', 'SELECT pg_advisory_unlock_all()::text') AS t(r text);
SELECT finlive_mark(1) > 0 AS marked_1;
SELECT job_id FROM finlive_owners ORDER BY job_id;

-- Clean up.
SELECT finlive_clear_all() AS released;
SELECT dblink_disconnect('filler');
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA edge_room CASCADE;
RESET client_min_messages;
