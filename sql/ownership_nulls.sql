-- Rule: NULL and unknown job ids never raise.  finlive_mark(NULL) returns
-- NULL and takes nothing; finlive_clear of NULL or of a job this session
-- does not own is false; finlive_is_active(NULL) is false; finlive_fence is
-- false unless the job is owned and the token is its token.  Every bigint,
-- including 0, negatives and the extremes, is an ordinary job id.
SELECT finlive_mark(NULL) IS NULL AS null_job_null_token;
SELECT finlive_mark(NULL, 1, 'deploy-staging') IS NULL AS null_job_null_token;
SELECT count(*) AS owners FROM finlive_owners;
SELECT count(*) AS advisory_locks
  FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory';

SELECT finlive_clear(NULL) AS clear_null,
       finlive_clear(131) AS clear_unowned,
       finlive_is_active(NULL) AS active_null,
       finlive_is_active(131) AS active_unowned;
SELECT finlive_fence(NULL, NULL) AS fence_nulls,
       finlive_fence(NULL, 1) AS fence_null_job,
       finlive_fence(131, 1) AS fence_unowned;
SELECT finlive_clear_all() AS released_nothing;

-- Extreme ids.
SELECT finlive_mark(0) > 0 AS zero,
       finlive_mark(-1) > 0 AS minus_one,
       finlive_mark(9223372036854775807) > 0 AS max,
       finlive_mark(-9223372036854775808) > 0 AS min;
SELECT job_id FROM finlive_owners;
SELECT finlive_is_active(-1) AS active_minus_one,
       finlive_is_active(1) AS active_one;
SELECT finlive_clear_all() AS released;
