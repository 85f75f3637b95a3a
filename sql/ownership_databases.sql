-- Rule: ownership is per database.  finlive_owners, finlive_is_active and
-- finlive_snapshot report the current database's owners only, and the same
-- job id can be owned in two databases at once by two sessions.  Tokens
-- strictly increase across the whole cluster.
-- (dblink, from the PostgreSQL contrib set, provides the second session;
-- 00_setup installs it for every file.)
CREATE DATABASE regress_finlive_other;
SELECT dblink_connect('other', 'dbname=regress_finlive_other');
SELECT dblink_exec('other', 'CREATE EXTENSION finlive');

SELECT finlive_mark(701) AS here_first \gset
SELECT t AS there FROM dblink('other', 'SELECT finlive_mark(701)') AS r(t bigint) \gset
SELECT finlive_mark(702) AS here_second \gset
SELECT :there > :here_first AS there_after_here,
       :here_second > :there AS here_after_there;

-- Each database sees only its own owner of job 701.
SELECT job_id, pid = pg_backend_pid() AS mine, token = :here_first AS here_token
  FROM finlive_owners;
SELECT job_id, token = :there AS there_token
  FROM dblink('other', 'SELECT job_id, token FROM finlive_owners')
       AS r(job_id bigint, token bigint);
SELECT finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total' AS here;
SELECT * FROM dblink('other',
    $$SELECT finlive_snapshot() - 'finalizer_defers_total' - 'reaped_total'$$)
    AS r(there jsonb);

-- Releasing here does not release there.
SELECT finlive_clear(701) AS cleared_here;
SELECT finlive_is_active(701) AS active_here;
SELECT * FROM dblink('other', 'SELECT finlive_is_active(701)') AS r(active_there boolean);

SELECT finlive_clear_all() AS released_here;
SELECT dblink_disconnect('other');
DROP DATABASE regress_finlive_other WITH (FORCE);
