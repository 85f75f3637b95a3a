-- Rule: fencing tokens are > 0 and strictly increase over every successful
-- first mark; the owner marking again gets the same token back; a job
-- released and marked again gets a new, larger token.  (That tokens keep
-- increasing across server restarts is checked by the TAP suite.)
SELECT finlive_mark(201) AS a \gset
SELECT finlive_mark(202) AS b \gset
SELECT finlive_mark(201) AS a_again \gset
SELECT :a > 0 AS positive, :b > :a AS increasing, :a_again = :a AS same_for_owner;

SELECT finlive_clear(201) AS cleared;
SELECT finlive_mark(201) AS a_new \gset
SELECT :a_new > :b AS new_ownership_larger_token;

-- finlive_owners reports the token finlive_mark returned.
SELECT job_id, token = CASE job_id WHEN 201 THEN :a_new WHEN 202 THEN :b END AS reported
  FROM finlive_owners;

-- A hundred first marks in a row: every token larger than the one before.
CREATE TEMP TABLE marks (n int PRIMARY KEY, token bigint);
DO $$
BEGIN
    FOR n IN 1..100 LOOP
        INSERT INTO marks VALUES (n, finlive_mark(210 + n));
    END LOOP;
END
$$;
SELECT count(*) AS marks,
       count(*) FILTER (WHERE token > prev) AS larger_than_previous,
       count(DISTINCT token) AS distinct_tokens
  FROM (SELECT token, lag(token, 1, 0::bigint) OVER (ORDER BY n) AS prev FROM marks) m;

SELECT finlive_clear_all() AS released;
DROP TABLE marks;
