-- Rule: ownership ends when the session releases all its advisory locks,
-- with pg_advisory_unlock_all() or DISCARD ALL.  No stale metadata is ever
-- reported afterwards (owners, snapshot, stats, fence, clear), and the job
-- can be marked again under a new, larger token.
SELECT finlive_mark(601, 1, 'deploy-staging') AS t1 \gset
SELECT finlive_mark(602) > 0 AS marked;
SELECT pg_advisory_unlock_all();
SELECT finlive_is_active(601) AS active_601, finlive_is_active(602) AS active_602;
SELECT count(*) AS owners FROM finlive_owners;
SELECT finlive_snapshot() -> 'active' AS snapshot_active,
       finlive_snapshot() -> 'jobs' AS snapshot_jobs;
SELECT owners_active FROM finlive_stats;
SELECT finlive_fence(601, :t1) AS old_token_fences;
SELECT finlive_clear(601) AS clear_finds_nothing;
SELECT finlive_clear_all() AS clear_all_finds_nothing;
SELECT finlive_mark(601) AS t2 \gset
SELECT :t2 > :t1 AS new_larger_token;
SELECT job_id, run_id, stage FROM finlive_owners;

-- DISCARD ALL does the same.
SELECT finlive_mark(603) > 0 AS marked;
DISCARD ALL;
SELECT finlive_is_active(601) AS active_601, finlive_is_active(603) AS active_603;
SELECT count(*) AS owners FROM finlive_owners;
SELECT finlive_snapshot() -> 'active' AS snapshot_active;
SELECT owners_active FROM finlive_stats;
SELECT finlive_fence(601, :t2) AS old_token_fences;
SELECT finlive_clear_all() AS clear_all_finds_nothing;
SELECT finlive_mark(601) AS t3 \gset
SELECT :t3 > :t2 AS new_larger_token;
SELECT finlive_clear_all() AS released;
