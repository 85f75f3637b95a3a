-- Rule: finlive_owners() and the view finlive_owners list the live owners of
-- the current database, ordered by job_id, with the run_id and stage given to
-- finlive_mark, the owner's pid and backend_start (an owner is identified by
-- both), its token, and since, when ownership began (unchanged by a repeated
-- mark).
\d finlive_owners

SELECT count(*) AS owners_before FROM finlive_owners;
SELECT finlive_mark(403, 33, 'deploy') AS t403 \gset
SELECT finlive_mark(401, 11, 'deploy-staging') AS t401 \gset
SELECT finlive_mark(402) AS t402 \gset

-- No ORDER BY: the function itself returns them ordered by job_id.
SELECT job_id, run_id, stage FROM finlive_owners();
SELECT job_id,
       pid = pg_backend_pid() AS pid_is_mine,
       backend_start = (SELECT backend_start FROM pg_stat_activity
                         WHERE pid = pg_backend_pid()) AS same_backend_start,
       token = CASE job_id WHEN 401 THEN :t401 WHEN 402 THEN :t402
                           WHEN 403 THEN :t403 END AS token_matches,
       since >= backend_start AND since <= clock_timestamp() AS since_plausible
  FROM finlive_owners;

-- The view and the function agree.
SELECT (SELECT count(*) FROM finlive_owners) AS view_rows,
       (SELECT count(*) FROM (SELECT * FROM finlive_owners
                              EXCEPT SELECT * FROM finlive_owners()) d) AS differences;

-- since is when ownership began: a repeated mark keeps it.
SELECT since AS since401 FROM finlive_owners WHERE job_id = 401 \gset
SELECT pg_sleep(0.01);
SELECT finlive_mark(401, 12, 'deploy') = :t401 AS same_token;
SELECT job_id, run_id, stage, since = :'since401' AS same_since
  FROM finlive_owners WHERE job_id = 401;

SELECT finlive_clear(402) AS cleared;
SELECT job_id FROM finlive_owners;
SELECT finlive_clear_all() AS released;
SELECT count(*) AS owners_after FROM finlive_owners;
