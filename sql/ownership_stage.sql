-- Rule: finlive_mark accepts a stage of up to 256 bytes; a longer stage is
-- an ERROR with SQLSTATE 22023 that takes nothing (a free job stays free, an
-- owned job keeps its ownership, token and stage).  The limit counts bytes,
-- not characters.
SELECT finlive_mark(141, 1, repeat('s', 256)) > 0 AS marked_256_bytes;
SELECT job_id, octet_length(stage) AS stage_bytes FROM finlive_owners;

SELECT finlive_mark(142, 1, repeat('s', 257));
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(142) AS active_after_error;
SELECT count(*) AS lock_rows_for_142
  FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 7966 AND objid = 142;

-- 128 two-byte characters are 256 bytes: accepted; 129 are 258: rejected.
SELECT finlive_mark(143, 1, repeat('é', 128)) > 0 AS marked_128_chars;
SELECT finlive_mark(144, 1, repeat('é', 129));
\echo SQLSTATE: :SQLSTATE
SELECT finlive_is_active(144) AS active_after_error;

-- A too-long stage on a job this session already owns changes nothing.
SELECT token AS tok FROM finlive_owners WHERE job_id = 141 \gset
SELECT finlive_mark(141, 2, repeat('s', 300));
\echo SQLSTATE: :SQLSTATE
SELECT job_id, run_id, octet_length(stage) AS stage_bytes, token = :tok AS same_token
  FROM finlive_owners WHERE job_id = 141;
SELECT finlive_is_active(141) AS still_owned;

SELECT finlive_clear_all() AS released;
