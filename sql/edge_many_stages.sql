-- Rule [1.2]: any number of distinct stage values may be in use at once;
-- the only limits are finlive.max_owners and the 256-byte length of one
-- stage (longer: 22023).  Here 300 jobs with 300 distinct stages in this
-- session and 300 more with 300 other stages in another, each listed with
-- its own stage; a re-mark with a new stage replaces the stage; and
-- releasing them leaves nothing behind (stages can be taken again).

CREATE SCHEMA edge_stages;
SET search_path = edge_stages, public;

-- 300 distinct stages here, 300 others in the owner session.
SELECT count(finlive_mark(g, g, 'stage-' || g)) AS marked_here
  FROM generate_series(1, 300) g;
SELECT owner_sql($$SELECT count(finlive_mark(g, g, 'other-stage-' || g))::text
                    FROM generate_series(1001, 1300) g$$) AS marked_there;
SELECT count(*) AS owners, count(DISTINCT stage) AS distinct_stages
  FROM finlive_owners;
SELECT count(*) AS stage_matches_job
  FROM finlive_owners
 WHERE stage = CASE WHEN job_id < 1000 THEN 'stage-' ELSE 'other-stage-' END || job_id;

-- A stage of exactly 256 bytes (multibyte characters counted in bytes),
-- and one byte more.
SELECT finlive_mark(301, 1, repeat('x', 256)) > 0 AS stage_256_bytes;
SELECT finlive_mark(302, 1, repeat('é', 128)) > 0 AS stage_256_bytes_multibyte;
SELECT finlive_mark(303, 1, repeat('x', 257));
\echo SQLSTATE: :SQLSTATE
SELECT finlive_mark(303, 1, repeat('é', 128) || 'x');
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(303) AS active_303;
SELECT job_id, octet_length(stage) AS stage_bytes FROM finlive_owners
 WHERE job_id IN (301, 302) ORDER BY job_id;

-- Re-marking with a new stage, 300 times: the stage is replaced, the
-- ownership is the same.
SELECT count(*) AS remarked
  FROM generate_series(1, 300) g
 WHERE finlive_mark(g, g, 'renamed-' || g) IS NOT NULL;
SELECT count(*) AS owners_here, count(DISTINCT stage) AS distinct_stages_here,
       count(*) FILTER (WHERE stage LIKE 'renamed-%') AS renamed
  FROM finlive_owners WHERE pid = pg_backend_pid();

-- Released: nothing of them is left, and 300 new stages can be taken at
-- once again.
SELECT finlive_clear_all() AS released_here;
SELECT owner_clear_all() AS released_there;
SELECT count(*) AS owners_left FROM finlive_owners;
SELECT count(finlive_mark(g, g, 'again-' || g)) AS marked_again
  FROM generate_series(2001, 2300) g;
SELECT count(DISTINCT stage) AS distinct_stages FROM finlive_owners;
SELECT finlive_clear_all() AS released_again;

-- Clean up.
RESET search_path;
DROP SCHEMA edge_stages;
