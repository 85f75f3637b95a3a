-- Rule: hooks and the reaper's queries for a target run with the privileges
-- of the role that registered it, not those of the session running the
-- tick: the on_reap hook, the gate and the reaper's own UPDATE of the jobs
-- table all run as the registering role, even when a superuser runs
-- finlive_reap_once.  (The registering role has the default public schema
-- on its search_path, as a role usually does: [1.2] that schema, where only
-- the database owner can create objects, may be on a registrant's path.)

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA reappriv;
SET search_path = reappriv, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
CREATE ROLE regress_finlive_owner;
GRANT USAGE ON SCHEMA reappriv TO regress_finlive_owner;
ALTER TABLE jobs OWNER TO regress_finlive_owner;
ALTER TABLE runs OWNER TO regress_finlive_owner;
ALTER TABLE tasks OWNER TO regress_finlive_owner;
GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass,
                                           regprocedure, regprocedure, boolean,
                                           interval, interval, interval, text[],
                                           boolean, boolean),
                          finlive_unregister(regclass)
   TO regress_finlive_owner;

-- Who ran what: the hook, the gate and an UPDATE trigger on jobs record
-- current_user.
CREATE TABLE seen (what text, who name);
GRANT INSERT ON seen TO regress_finlive_owner;
CREATE FUNCTION on_reap(bigint, integer, text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO reappriv.seen VALUES ('on_reap', current_user) $$;
CREATE FUNCTION gate(bigint) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO reappriv.seen VALUES ('gate', current_user) RETURNING true $$;
CREATE FUNCTION note_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reappriv.seen VALUES ('update', current_user);
    RETURN NEW;
END
$$;
CREATE TRIGGER note_update BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION note_update();

SET ROLE regress_finlive_owner;
SELECT finlive_register('jobs', 'runs', 'tasks',
                        on_reap => 'on_reap(bigint, integer, text)',
                        gate => 'gate(bigint)');
RESET ROLE;
SELECT jobs, registered_by FROM finlive_targets WHERE jobs = 'jobs'::regclass;

CALL add_job(1, 'testing', 0, '10 minutes');
SELECT current_user = session_user AS tick_run_by_the_superuser;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs ORDER BY id;
SELECT what, who FROM seen ORDER BY what;

-- Without the right to update its own jobs table, the registering role's
-- target cannot be reaped: it is skipped with a WARNING naming the role (an
-- unusable target, not one job's error), its job is left alone, and the
-- superuser's rights are never borrowed.
CALL add_job(2, 'testing', 0, '10 minutes');
ALTER TABLE jobs OWNER TO CURRENT_USER;
GRANT SELECT ON jobs, runs, tasks TO regress_finlive_owner;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
SELECT id, status FROM jobs ORDER BY id;
SELECT errors_total FROM finlive_stats;

SET ROLE regress_finlive_owner;
SELECT finlive_unregister('jobs') AS unregistered;
RESET ROLE;
DROP TABLE seen;
DROP OWNED BY regress_finlive_owner;
DROP ROLE regress_finlive_owner;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA reappriv CASCADE;
RESET client_min_messages;
