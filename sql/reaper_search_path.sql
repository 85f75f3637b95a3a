-- Rule: the reaper's queries run with a search_path that no other role can
-- hijack: objects that another role put first on the caller's search_path
-- (an "=" operator for text that is always true, a now() that returns the
-- far future) change nothing in what the reaper sees and decides.

-- The application's tables and add_job() (00_setup), in a schema of their own.
CREATE SCHEMA tier_sp;
SET search_path = tier_sp, public;
CALL app_tables();
-- Every setting the reaper reads, pinned for this file.
CALL pin_reaper_settings();
SELECT finlive_stats_reset();
\set counters 'SELECT reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total AS defers, errors_total FROM finlive_stats'
SELECT finlive_register('jobs', 'runs', 'tasks');

CREATE ROLE regress_finlive_mallory;
CREATE SCHEMA trap AUTHORIZATION regress_finlive_mallory;
SET ROLE regress_finlive_mallory;
CREATE FUNCTION trap.text_eq(text, text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.text_eq);
CREATE FUNCTION trap.now() RETURNS timestamptz
    LANGUAGE sql STABLE AS $$ SELECT timestamptz '2999-01-01' $$;
RESET ROLE;

CALL add_job(1, 'testing', 0, '1 minute');               -- within grace
CALL add_job(2, 'development', NULL, NULL, '10 minutes'); -- young, no Tier-1
CALL add_job(3, 'testing', 0, '10 minutes');
UPDATE jobs SET status = 'queued' WHERE id = 3;           -- not running

SET search_path = trap, pg_catalog, tier_sp, public;
SELECT * FROM finlive_reap_once() ORDER BY job_id, tier;
RESET search_path;
SET search_path = tier_sp, public;
SELECT id, status, attempts FROM jobs ORDER BY id;
:counters;

SET client_min_messages = warning;
DROP SCHEMA trap CASCADE;
RESET client_min_messages;
DROP ROLE regress_finlive_mallory;

-- Clean up.
SELECT owner_clear_all() >= 0 AS released;
SELECT finlive_unregister('jobs') AS unregistered;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA tier_sp CASCADE;
RESET client_min_messages;
