-- Row 2, the same question asked of pg_locks: finlive's key space is
-- objsubid 7966, classid/objid = high/low 32 bits of the job id, in the
-- current database.
\set job random(1, 20000)
SELECT EXISTS (
    SELECT 1
      FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'advisory'
       AND l.objsubid = 7966
       AND l.granted
       AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                          WHERE d.datname = pg_catalog.current_database())
       AND l.classid = ((:job)::bigint >> 32)::oid
       AND l.objid = ((:job)::bigint & 4294967295)::oid);
