-- Rule: finlive_fence(job, token) is true iff the job is owned right now and
-- token is its current token, so a finalizer can guard its final write:
--   UPDATE jobs SET status = 'done' WHERE id = $1 AND finlive_fence($1, $2)
-- A finalizer that lost ownership (cleared, or the job re-marked with a new
-- token) writes nothing.
CREATE TABLE fence_jobs (id bigint PRIMARY KEY, status text NOT NULL);
INSERT INTO fence_jobs VALUES (301, 'running'), (302, 'running');

SELECT finlive_mark(301) AS tok \gset
SELECT finlive_fence(301, :tok) AS current_token,
       finlive_fence(301, :tok - 1) AS older_token,
       finlive_fence(301, :tok + 1) AS newer_token,
       finlive_fence(301, NULL) AS null_token,
       finlive_fence(302, :tok) AS other_job;

UPDATE fence_jobs SET status = 'done' WHERE id = 301 AND finlive_fence(301, :tok)
    RETURNING id, status;

-- Ownership lost: the old token no longer passes, not even once the job is
-- owned again under a new token.
SELECT finlive_mark(302) AS tok302 \gset
SELECT finlive_clear(302) AS cleared;
SELECT finlive_fence(302, :tok302) AS after_clear;
UPDATE fence_jobs SET status = 'done' WHERE id = 302 AND finlive_fence(302, :tok302)
    RETURNING id, status;
SELECT finlive_mark(302) AS tok302_new \gset
SELECT finlive_fence(302, :tok302) AS old_token, finlive_fence(302, :tok302_new) AS new_token;
UPDATE fence_jobs SET status = 'done' WHERE id = 302 AND finlive_fence(302, :tok302)
    RETURNING id, status;
UPDATE fence_jobs SET status = 'done' WHERE id = 302 AND finlive_fence(302, :tok302_new)
    RETURNING id, status;
SELECT * FROM fence_jobs ORDER BY id;

SELECT finlive_clear_all() AS released;
DROP TABLE fence_jobs;
