-- Rule: finlive_mark takes ownership of a free job without waiting and
-- returns a fencing token > 0.  The owning session marking again keeps
-- ownership, gets the same token back and updates run_id and stage.
-- finlive_clear releases: true if this session owned the job, false after.
SELECT finlive_is_active(101) AS active_before_mark;

SELECT finlive_mark(101, 7, 'deploy-staging') AS tok \gset
SELECT :tok > 0 AS token_positive;
SELECT finlive_is_active(101) AS active_after_mark;
SELECT job_id, run_id, stage, pid = pg_backend_pid() AS owned_by_me,
       token = :tok AS same_token
  FROM finlive_owners;

-- Marking again: same token, run_id and stage updated, still one owner row.
SELECT finlive_mark(101, 8, 'deploy') = :tok AS same_token_again;
SELECT job_id, run_id, stage, token = :tok AS same_token
  FROM finlive_owners;

-- Clearing: true once, then false; the job is free.
SELECT finlive_clear(101) AS cleared;
SELECT finlive_is_active(101) AS active_after_clear;
SELECT finlive_clear(101) AS cleared_again;
SELECT count(*) AS owners_left FROM finlive_owners;

-- finlive_clear_all releases everything this session owns and counts it.
SELECT finlive_mark(g) > 0 AS marked FROM generate_series(111, 113) g;
SELECT finlive_clear_all() AS released;
SELECT finlive_is_active(112) AS active_after_clear_all;
SELECT finlive_clear_all() AS released_again;
