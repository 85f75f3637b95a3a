-- Harness for the tick and reap rows: run n ticks of one reaper, each in a
-- transaction of its own like the worker's, timed inside the server from
-- just before the tick to just after its COMMIT (the NOTIFY queue and the
-- commit record are part of a reap), with no client round trip on either
-- side; and keep what each tick did, so the reapers can be shown to do the
-- same work.
--   finlive        finlive_reap_once()
--   plpgsql        plpgsql_reap_once(true)        tuned, per-job isolation
--   plpgsql_noiso  plpgsql_reap_once(false)       tuned, no isolation
--   plpgsql_plain  plpgsql_reap_once_plain(true)  as first written
CREATE TABLE bench_tick (
    reaper  text    NOT NULL,
    label   text    NOT NULL,
    ms      float8  NOT NULL,
    actions integer NOT NULL,
    defers  integer NOT NULL
);

CREATE PROCEDURE bench_ticks(p_reaper text, p_label text, p_n integer)
LANGUAGE plpgsql
AS $fn$
DECLARE
    t0 timestamptz;
    ms float8;
    n_actions integer;
    n_defers integer;
BEGIN
    FOR i IN 1 .. p_n LOOP
        t0 := clock_timestamp();
        IF p_reaper = 'finlive' THEN
            SELECT count(*), count(*) FILTER (WHERE r.action = 'deferred')
              INTO n_actions, n_defers
              FROM finlive_reap_once() r;
        ELSIF p_reaper = 'plpgsql' THEN
            SELECT count(*), count(*) FILTER (WHERE r.action = 'deferred')
              INTO n_actions, n_defers
              FROM plpgsql_reap_once(true) r;
        ELSIF p_reaper = 'plpgsql_noiso' THEN
            SELECT count(*), count(*) FILTER (WHERE r.action = 'deferred')
              INTO n_actions, n_defers
              FROM plpgsql_reap_once(false) r;
        ELSE
            SELECT count(*), count(*) FILTER (WHERE r.action = 'deferred')
              INTO n_actions, n_defers
              FROM plpgsql_reap_once_plain(true) r;
        END IF;
        COMMIT;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        INSERT INTO bench_tick VALUES (p_reaper, p_label, ms, n_actions, n_defers);
        COMMIT;
    END LOOP;
END;
$fn$;
