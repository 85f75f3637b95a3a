-- A check that the PL/pgSQL comparators decide exactly as finlive does: ten
-- running jobs covering every tier and outcome (jobs 1, 4, 7 and 8 are
-- owned by a live session while this runs; claim_grace is 1 h).
--   1 guarded, run ended 400 s ago, owned          -> deferred (Tier-2)
--   2 guarded, ended 400 s ago, exit 0, not owned   -> done     (Tier-2)
--   3 not guarded, exit 1, attempts left            -> queued   (Tier-2)
--   4 not guarded, exit 0, owned                    -> done     (Tier-2)
--   5 exit 0, ended 100 s ago (within grace)        -> nothing
--   6 no exit, started 2 h ago, not owned           -> queued   (Tier-1)
--   7 no exit, started 70 min ago, owned            -> nothing
--   8 guarded, owned, but started 2 h ago           -> queued   (Tier-3)
--   9 exit 1, no attempts left                      -> failed   (Tier-2)
--  10 no run at all, started 2 h ago, not owned     -> queued   (Tier-1)
CREATE PROCEDURE bench_scenario_reset()
LANGUAGE plpgsql
AS $fn$
BEGIN
    DELETE FROM jobs;
    DELETE FROM runs;
    DELETE FROM tasks;
    INSERT INTO tasks VALUES
        (1, 'deploy-staging'), (2, 'deploy-staging'), (3, 'build'), (4, 'build'),
        (5, 'deploy-staging'), (6, 'build'), (7, 'deploy-staging'),
        (8, 'deploy-staging'), (9, 'build'), (10, 'build');
    INSERT INTO runs VALUES
        (1, now() - interval '400 s', 0), (2, now() - interval '400 s', 0),
        (3, now() - interval '400 s', 1), (4, now() - interval '400 s', 0),
        (5, now() - interval '100 s', 0), (6, NULL, NULL), (7, NULL, NULL),
        (8, now() - interval '400 s', 0), (9, now() - interval '400 s', 1);
    INSERT INTO jobs (id, status, run_id, task_id, attempts, max_attempts, started_at, created_at) VALUES
        (1, 'running', 1, 1, 0, 3, now() - interval '1000 s', now()),
        (2, 'running', 2, 2, 0, 3, now() - interval '1000 s', now()),
        (3, 'running', 3, 3, 0, 3, now() - interval '1000 s', now()),
        (4, 'running', 4, 4, 0, 3, now() - interval '1000 s', now()),
        (5, 'running', 5, 5, 0, 3, now() - interval '1000 s', now()),
        (6, 'running', 6, 6, 0, 3, now() - interval '2 h', now()),
        (7, 'running', 7, 7, 0, 3, now() - interval '70 min', now()),
        (8, 'running', 8, 8, 0, 3, now() - interval '2 h', now()),
        (9, 'running', 9, 9, 3, 3, now() - interval '1000 s', now()),
        (10, 'running', NULL, 10, 0, 3, now() - interval '2 h', now());
END;
$fn$;

-- Each reaper's actions and the jobs it leaves, as one text to compare.
CREATE FUNCTION bench_scenario(p_reaper text) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    acts text;
    after text;
BEGIN
    CALL bench_scenario_reset();
    IF p_reaper = 'finlive' THEN
        SELECT string_agg(r.job_id || ':' || r.tier || ':' || r.action, ' ' ORDER BY r.job_id)
          INTO acts FROM finlive_reap_once() r;
    ELSIF p_reaper = 'plpgsql' THEN
        SELECT string_agg(r.job_id || ':' || r.tier || ':' || r.action, ' ' ORDER BY r.job_id)
          INTO acts FROM plpgsql_reap_once() r;
    ELSE
        SELECT string_agg(r.job_id || ':' || r.tier || ':' || r.action, ' ' ORDER BY r.job_id)
          INTO acts FROM plpgsql_reap_once_plain() r;
    END IF;
    SELECT string_agg(j.id || '=' || j.status || '/' || j.attempts, ' ' ORDER BY j.id)
      INTO after FROM jobs j;
    RETURN acts || '; after: ' || after;
END;
$fn$;
