-- Rule: finlive's settings exist with their documented types, defaults and
-- contexts: enabled, finalize_grace, max_running, claim_grace,
-- guarded_stages, dry_run, restart_grace and [1.2] hook_timeout (ms, 0 = no
-- limit) are settable by a superuser at any time (SET works in a superuser
-- session); log_retention, naptime, reaper and [1.3] database (default '*',
-- every database with the extension) change on reload; max_owners needs a
-- restart.  Time settings carry their unit.  Ordinary roles cannot SET the
-- superuser ones, and the finlive. prefix is reserved.
SELECT name, boot_val, unit, vartype, context
  FROM pg_settings WHERE name LIKE 'finlive.%' ORDER BY name;

-- A superuser session can SET every superuser setting.
SET finlive.enabled = off;
SET finlive.finalize_grace = '10min';
SET finlive.max_running = '2h';
SET finlive.claim_grace = 45;
SET finlive.guarded_stages = 'deploy-staging,deploy';
SET finlive.dry_run = on;
SET finlive.restart_grace = 0;
SET finlive.hook_timeout = '2s';
SELECT name, setting FROM pg_settings
 WHERE name LIKE 'finlive.%' AND context = 'superuser' ORDER BY name;
RESET ALL;
SHOW finlive.finalize_grace;

-- Reload and restart settings cannot be SET.
SET finlive.naptime = 1000;
\echo SQLSTATE: :SQLSTATE
SET finlive.max_owners = 10;
\echo SQLSTATE: :SQLSTATE
SET finlive.database = 'postgres';
\echo SQLSTATE: :SQLSTATE

-- Bad values.
SET finlive.enabled = 'maybe';
\echo SQLSTATE: :SQLSTATE
-- (the range in the message has units from PostgreSQL 17: the SQLSTATE only)
\set VERBOSITY sqlstate
SET finlive.finalize_grace = -1;
\echo SQLSTATE: :SQLSTATE
SET finlive.hook_timeout = -1;
\echo SQLSTATE: :SQLSTATE
\set VERBOSITY default

-- The prefix is reserved.
SET finlive.no_such_setting = 1;
\echo SQLSTATE: :SQLSTATE

-- An ordinary role cannot SET them.
CREATE ROLE regress_finlive_plain;
SET ROLE regress_finlive_plain;
SET finlive.enabled = off;
\echo SQLSTATE: :SQLSTATE
SET finlive.guarded_stages = '';
\echo SQLSTATE: :SQLSTATE
SET finlive.hook_timeout = 0;
\echo SQLSTATE: :SQLSTATE
SHOW finlive.enabled;
RESET ROLE;
DROP ROLE regress_finlive_plain;
