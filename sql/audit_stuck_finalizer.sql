-- Rule [1.3] (issue 13: stuck_finalizer flags only what is suspicious):
-- finlive_audit() reports a deferred job with reason stuck_finalizer when
-- its owner has been idle in a transaction -- holding that transaction's
-- locks -- for longer than the target's finalize_grace.  An owner that is
-- merely idle (a finalizer running its gates between statements, the case
-- finlive exists for) is not reported, however long; nor is one idle in a
-- transaction for less than the grace, nor the owner of a job that is not
-- deferred.

-- The application's tables, in a schema of their own: target jobs with the
-- server's finalize_grace, one second here, target slow_jobs with its own
-- grace of an hour.
CREATE SCHEMA audit_stuck;
SET search_path = audit_stuck, public;
CREATE TABLE tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE jobs (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    started_at   timestamptz NOT NULL
);
CREATE INDEX ON jobs (id) WHERE status = 'running';
CREATE TABLE slow_jobs (LIKE jobs INCLUDING ALL);
CREATE PROCEDURE add_job(id bigint, stage text, finished_ago interval,
                         target text DEFAULT 'jobs')
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_stuck.tasks VALUES (id, stage);
    INSERT INTO audit_stuck.runs VALUES (id, now() - finished_ago, 0);
    EXECUTE format('INSERT INTO audit_stuck.%I VALUES ($1, ''running'', $1, $1, 0, 2, now() - $2 - interval ''1 minute'')',
                   target) USING id, finished_ago;
END
$$;
-- Every setting the reaper reads, pinned for this file.
SET finlive.enabled = on;
SET finlive.dry_run = off;
SET finlive.finalize_grace = 1;
SET finlive.max_running = 5400;
SET finlive.claim_grace = 30;
SET finlive.guarded_stages = 'deploy-staging';
SET finlive.restart_grace = 0;
SELECT finlive_register('jobs', 'runs', 'tasks');
SELECT finlive_register('slow_jobs', 'runs', 'tasks', finalize_grace => '1 hour',
                        max_running => '1 day');

-- One owner session per job, each its own dblink connection.
CREATE FUNCTION owner_in(conn text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (conn = ANY (COALESCE(dblink_get_connections(), '{}'))) THEN
        PERFORM dblink_connect(conn,
            format('dbname=%s host=%s port=%s application_name=%s', current_database(),
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), conn));
    END IF;
    RETURN (SELECT r FROM dblink(conn, q) AS t(r text));
END
$$;
CALL add_job(1, 'deploy-staging', '10 minutes');              -- owner idle in a transaction
CALL add_job(2, 'deploy-staging', '10 minutes');              -- owner idle
CALL add_job(3, 'testing', '10 minutes');                     -- not guarded: not deferred
CALL add_job(4, 'deploy-staging', '2 hours', 'slow_jobs');    -- idle in a transaction, within the grace
CALL add_job(5, 'deploy-staging', '10 minutes');              -- owner active (a long query)
SELECT owner_in('in_tx', 'SELECT finlive_mark(1, 1, ''deploy-staging'')::text') > '0' AS owns_1,
       owner_in('idle', 'SELECT finlive_mark(2, 2, ''deploy-staging'')::text') > '0' AS owns_2,
       owner_in('not_guarded', 'SELECT finlive_mark(3, 3, ''testing'')::text') > '0' AS owns_3,
       owner_in('slow_in_tx', 'SELECT finlive_mark(4, 4, ''deploy-staging'')::text') > '0' AS owns_4,
       owner_in('active', 'SELECT finlive_mark(5, 5, ''deploy-staging'')::text') > '0' AS owns_5;
SELECT owner_in('in_tx', 'BEGIN') AS in_tx, owner_in('not_guarded', 'BEGIN') AS not_guarded,
       owner_in('slow_in_tx', 'BEGIN') AS slow_in_tx;
SELECT owner_in('in_tx', 'SELECT count(*)::text FROM audit_stuck.jobs') AS in_tx_read;
SELECT dblink_send_query('active', 'SELECT pg_sleep(5)') AS active_sent;
SELECT (SELECT pid FROM pg_stat_activity WHERE application_name = 'in_tx') AS in_tx_pid \gset
-- Past the one-second grace.
SELECT pg_sleep(1.5);
SELECT application_name, state FROM pg_stat_activity
 WHERE application_name IN ('in_tx', 'idle', 'not_guarded', 'slow_in_tx', 'active')
 ORDER BY application_name;

-- Jobs 1, 2, 4 and 5 are deferred now; only job 1's owner is stuck.
BEGIN;
SELECT target, job_id, action FROM finlive_reap_once() ORDER BY target::text, job_id;
ROLLBACK;
SELECT reason, target, job_id, pid = :in_tx_pid AS pid_of_in_tx,
       regexp_replace(regexp_replace(detail, 'session \d+', 'session <pid>'),
                      '[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d [0-9:.]+ \d{4} [A-Z]+', '<time>', 'g') AS detail
  FROM finlive_audit() WHERE reason = 'stuck_finalizer' ORDER BY job_id;
SELECT job_id, state FROM finlive_running_jobs WHERE owner_pid IS NOT NULL ORDER BY job_id;

-- Once its transaction ends, job 1's owner is just idle: no longer reported.
SELECT owner_in('in_tx', 'COMMIT') AS in_tx;
SELECT count(*) AS stuck FROM finlive_audit() WHERE reason = 'stuck_finalizer';

-- Clean up.
SELECT r FROM dblink_get_result('active') AS t(r text);
SELECT owner_in('not_guarded', 'COMMIT') AS not_guarded, owner_in('slow_in_tx', 'COMMIT') AS slow_in_tx;
SELECT count(*) AS disconnected
  FROM unnest(dblink_get_connections()) c, LATERAL dblink_disconnect(c)
 WHERE c <> 'owner';
SELECT finlive_unregister('jobs') AS unregistered,
       finlive_unregister('slow_jobs') AS unregistered_slow;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA audit_stuck CASCADE;
RESET client_min_messages;
