-- Rule: ownership is session-level, not transactional.  It survives the
-- owner's transaction aborting (ROLLBACK, an error, a rolled-back
-- savepoint), and a finlive_clear is not undone by a rollback either.
BEGIN;
SELECT finlive_mark(151) > 0 AS marked;
ROLLBACK;
SELECT finlive_is_active(151) AS survives_rollback;

BEGIN;
SELECT finlive_mark(152) > 0 AS marked;
SELECT 1 / 0;
ROLLBACK;
SELECT finlive_is_active(152) AS survives_error;

BEGIN;
SAVEPOINT before_mark;
SELECT finlive_mark(153) > 0 AS marked;
ROLLBACK TO SAVEPOINT before_mark;
COMMIT;
SELECT finlive_is_active(153) AS survives_savepoint_rollback;

-- The token does not change because a transaction aborted.
SELECT token AS tok FROM finlive_owners WHERE job_id = 152 \gset
SELECT finlive_mark(152) = :tok AS same_token;

BEGIN;
SELECT finlive_clear(151) AS cleared;
ROLLBACK;
SELECT finlive_is_active(151) AS clear_not_undone;

SELECT job_id FROM finlive_owners;
SELECT finlive_clear_all() AS released;
