# ALTER EXTENSION finlive UPDATE, 1.1 -> 1.2 -> 1.3, with a live owner.
#
# Rules (SPEC "[1.2]", "[1.3] A policy per target"; behaviour.md
# "Versions"; issue 10 "Done when", issue 12 "What to build" 4):
#  - before the update, the library (1.3) leaves a 1.1 database alone: its
#    reaper waits with one LOG line (not one per tick), finlive_reap_once and
#    finlive_register raise 55000 "must be updated" with a hint naming ALTER
#    EXTENSION finlive UPDATE; ownership works at any version;
#  - the update takes the database to 1.2, then to 1.3, while an owner in
#    another session holds two jobs: it keeps its ownership and its tokens
#    (its fenced write with the token of 1.1 passes), neither update waits
#    for it or disturbs it;
#  - every registration keeps every field (registrant, time, hooks, tables,
#    claim_owned); a 1.1 registration keeps the search_path it was made with,
#    'pg_catalog, pg_temp'; after 1.3 its policy is NULL and the effective
#    policy is the server settings;
#  - a role granted EXECUTE on finlive_register and finlive_mark under 1.1
#    keeps both: at 1.2 (same function) and at 1.3 (finlive_register is a new
#    function with six more arguments), and PUBLIC still has neither;
#  - after each update the reaper reaps (hooks bound to the functions the
#    1.1 registration names), defers the owned job, and reaps the owner's
#    jobs once the owner dies.
#
# The 1.1 registrations are written into finlive_target as the 1.1 library
# wrote them (hooks as format_procedure_qualified text, no search_path): the
# 1.3 library refuses finlive_register on a 1.1 database.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('upgrade_live_owner');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.finalize_grace = 300
finlive.claim_grace = 30
});
$node->start;
# a database at the current version, whose reaper ticks all along
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');

my $db = 'up11';
$node->safe_psql('postgres', "CREATE ROLE regist LOGIN; CREATE DATABASE $db");
my $offset = log_offset($node);
$node->safe_psql($db, "CREATE EXTENSION finlive VERSION '1.1'");
$node->safe_psql($db, q{
GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass, regprocedure,
                                          regprocedure, boolean),
                          finlive_mark(bigint, bigint, text),
                          finlive_clear(bigint) TO regist;
CREATE SCHEMA app AUTHORIZATION regist;
SET ROLE regist;
CREATE TABLE app.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE app.tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE app.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 2,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON app.jobs (id) WHERE status = 'running';
CREATE TABLE app.advanced (job_id bigint, tier integer, status text, who text);
-- written for 1.1's pinned search_path: every name qualified
CREATE FUNCTION app.advance(bigint, integer, text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO app.advanced VALUES ($1, $2, $3, current_user)';
CREATE FUNCTION app.pass(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
RESET ROLE;
CREATE TABLE public.pruns (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE public.pjobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint,
    task_id bigint, attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 2,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON public.pjobs (status);
-- the registrations, as finlive_register of 1.1 wrote them
INSERT INTO finlive_target (jobs, runs, tasks, on_reap, gate, claim_owned, registered_by, registered_at)
VALUES ('app.jobs', 'app.runs', 'app.tasks', 'app.advance(bigint,integer,pg_catalog.text)',
        'app.pass(bigint)', true, 'regist', '2024-01-02 03:04:05+00'),
       ('public.pjobs', 'public.pruns', NULL, NULL, NULL, false, 'postgres', '2024-01-02 03:04:06+00');
});
$node->safe_psql($db, try_function_sql());

my $registrations = q{
	SELECT jobs::text, runs::text, coalesce(tasks::text, '-'), coalesce(on_reap::text, '-'),
	       coalesce(gate::text, '-'), claim_owned, registered_by::text, registered_at
	  FROM finlive_targets ORDER BY jobs::text};
my $before = $node->safe_psql($db, $registrations);
is( $before,
	"app.jobs|app.runs|app.tasks|app.advance(bigint,integer,text)|app.pass(bigint)|t|regist|2024-01-02 03:04:05+00\n"
	  . 'pjobs|pruns|-|-|-|f|postgres|2024-01-02 03:04:06+00',
	'1.1: two registrations, one with hooks');

# The owner: another session, as regist, owns a finalization (guarded stage)
# and a claimed job, marked before the jobs exist.
my $owner = $node->background_psql($db, extra_params => [ '-U', 'regist' ]);
my $t1 = $owner->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
my $t2 = $owner->query_safe(q{SELECT finlive_mark(2, 2, 'build')});
ok($t1 > 0 && $t2 > $t1, 'ownership works on a 1.1 database');
$node->safe_psql($db, q{
INSERT INTO app.tasks VALUES (1, 'deploy-staging'), (2, 'build'), (3, 'build'), (4, 'build');
INSERT INTO app.runs VALUES (1, now() - interval '10 minutes', 0), (2, NULL, NULL),
                            (3, now() - interval '1 hour', 0);
INSERT INTO app.jobs VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes'),
                            (2, 'running', 2, 2, 0, 2, now() - interval '10 minutes'),
                            (3, 'running', 3, 3, 0, 2, now() - interval '2 hours');
INSERT INTO public.pruns VALUES (7, now() - interval '1 hour', 3);
INSERT INTO public.pjobs VALUES (7, 'running', 7, NULL, 2, 2, now() - interval '2 hours');
});

# -------------------------------------------------------------------------
# Before the update
# -------------------------------------------------------------------------

my $waiting = qr/^[^\n]*LOG:  extension "finlive" in database "up11" is at version 1\.1, older than the library/;
ok(wait_for_message($node, $waiting, $offset, 60), 'the reaper of the 1.1 database logs that it waits');
my $pticks = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
ok( defined poll_within(
		$node, 'postgres', "SELECT ticks >= $pticks + 10 FROM finlive_stats", 't', 60),
	'ten ticks of the other database\'s reaper go by');
is(log_count($node, $waiting, $offset), 1, 'the waiting reaper logged one line, not one per tick');
like( $node->safe_psql($db, q{SELECT count(*) FROM pg_stat_activity
                              WHERE backend_type = 'finlive reaper' AND datname = 'up11'}),
	qr/^1$/, 'it waits in the database (it did not leave)');
my ($st, $msg, $hint) = error_of($node->safe_psql($db, q{SELECT try_sql('SELECT * FROM finlive_reap_once()')}));
is($st, '55000', 'finlive_reap_once on 1.1 raises 55000');
like($msg, qr/must be updated/, 'saying the extension must be updated');
like($hint, qr/ALTER EXTENSION finlive UPDATE/, 'with a hint that names ALTER EXTENSION finlive UPDATE');
($st, $msg) = error_of($node->safe_psql($db,
	q{SELECT try_sql('SELECT finlive_register(''pjobs'', ''pruns'')')}));
is("$st $msg", '55000 extension "finlive" must be updated', 'so does finlive_register');
is($node->safe_psql($db, q{SELECT string_agg(status, ',' ORDER BY id) FROM app.jobs}),
	'running,running,running', 'nothing is reaped under 1.1');

# -------------------------------------------------------------------------
# 1.1 -> 1.2, the owner alive
# -------------------------------------------------------------------------

my $owners = q{SELECT string_agg(format('%s:%s:%s', job_id, token, stage), ' ' ORDER BY job_id)
                 FROM finlive_owners};
$node->safe_psql($db, "ALTER EXTENSION finlive UPDATE TO '1.2'");
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
	'1.2', 'the extension is at 1.2');
is($node->safe_psql($db, $owners), "1:$t1:deploy-staging 2:$t2:build",
	'1.2: the owner keeps both jobs and their tokens');
is($node->safe_psql($db, $registrations), $before, '1.2: every registration is kept field for field');
is( $node->safe_psql($db, q{SELECT string_agg(search_path, ',') FROM finlive_targets}),
	'pg_catalog, pg_temp,pg_catalog, pg_temp',
	'1.2: 1.1 registrations keep the search_path they were made with');
ok( defined poll_within(
		$node, $db, q{SELECT string_agg(status, ',' ORDER BY id) FROM app.jobs}, 'running,running,done', 60),
	'1.2: the reaper reaps the due job (the owned ones stay)');
ok(defined poll_within($node, $db, 'SELECT status FROM pjobs WHERE id = 7', 'failed', 60),
	'1.2: and the target without hooks (no attempts left: failed)');
is($node->safe_psql($db, q{SELECT string_agg(format('%s:%s:%s:%s', job_id, tier, status, who), ' ')
                            FROM app.advanced}),
	'3:2:done:regist', '1.2: the 1.1 hook is bound and runs as the registrant');
is( $node->safe_psql($db, q{SELECT has_function_privilege('regist',
        'finlive_register(regclass, regclass, regclass, regprocedure, regprocedure, boolean)', 'EXECUTE')
     || ' ' || has_function_privilege('regist', 'finlive_mark(bigint, bigint, text)', 'EXECUTE')}),
	'true true', '1.2: regist keeps EXECUTE on finlive_register and finlive_mark');
is($node->safe_psql($db, 'SELECT count(*) FROM finlive_target_problems()'), '0',
	'1.2: no target has a problem');

# -------------------------------------------------------------------------
# 1.2 -> 1.3, the owner alive
# -------------------------------------------------------------------------

my $register13 = 'finlive_register(regclass, regclass, regclass, regprocedure, regprocedure,
                  boolean, interval, interval, interval, text[], boolean, boolean)';
$node->safe_psql($db, "ALTER EXTENSION finlive UPDATE TO '1.3'");
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
	'1.3', 'the extension is at 1.3');
is($node->safe_psql($db, $owners), "1:$t1:deploy-staging 2:$t2:build",
	'1.3: the owner keeps both jobs and their tokens');
is($node->safe_psql($db, $registrations), $before, '1.3: every registration is kept field for field');
is( $node->safe_psql($db, q{SELECT string_agg(concat_ws('|', search_path, finalize_grace, claim_grace,
                                max_running, guarded_stages, enabled, dry_run), ',' ORDER BY jobs::text)
                             FROM finlive_targets}),
	'pg_catalog, pg_temp,pg_catalog, pg_temp',
	'1.3: the search_path is kept and the policy is NULL');
is( $node->safe_psql($db, q{SELECT string_agg(concat_ws('|', effective_finalize_grace, effective_claim_grace,
                                effective_max_running, effective_guarded_stages, effective_enabled,
                                effective_dry_run), ',' ORDER BY jobs::text) FROM finlive_targets}),
	'00:05:00|00:00:30|01:30:00|{deploy-staging}|t|f,00:05:00|00:00:30|01:30:00|{deploy-staging}|t|f',
	'1.3: the effective policy is the server settings');
is( $node->safe_psql($db, qq{SELECT has_function_privilege('regist', '$register13', 'EXECUTE')
     || ' ' || has_function_privilege('regist', 'finlive_mark(bigint, bigint, text)', 'EXECUTE')
     || ' ' || has_function_privilege('public', '$register13', 'EXECUTE')}),
	'true true false', '1.3: regist keeps EXECUTE on the new finlive_register and on finlive_mark; PUBLIC has neither');
is( $node->safe_psql($db, q{SET ROLE regist; SET search_path = app;
	SELECT public.try_sql($$SELECT public.finlive_register('app.jobs', 'app.runs', 'app.tasks',
	    'app.advance(bigint,integer,text)', 'app.pass(bigint)', true, finalize_grace => '5 minutes')$$)}),
	'ok', '1.3: regist registers again with a policy, through its grant');
is( $node->safe_psql($db, q{SELECT search_path || ' ' || finalize_grace FROM finlive_targets
                             WHERE jobs = 'app.jobs'::regclass}),
	'app, pg_temp 00:05:00', '1.3: registering again captures the path and the policy');
is($node->safe_psql($db, $owners), "1:$t1:deploy-staging 2:$t2:build",
	'registering again leaves the owner alone');

$node->safe_psql($db, q{INSERT INTO app.runs VALUES (4, now() - interval '1 hour', 0);
	INSERT INTO app.jobs VALUES (4, 'running', 4, 4, 0, 2, now() - interval '2 hours');});
ok( defined poll_within(
		$node, $db, q{SELECT string_agg(status, ',' ORDER BY id) FROM app.jobs}, 'running,running,done,done', 60),
	'1.3: the reaper reaps a new due job');
my $defers = $node->safe_psql($db, 'SELECT finalizer_defers_total FROM finlive_stats');
ok($defers > 0, '1.3: and keeps deferring the owned finalization');
is( $node->safe_psql($db, q{SELECT finlive_explain('app.jobs', 1) ->> 'action'}),
	'deferred', '1.3: finlive_explain agrees');

# The owner finishes job 1 with the token of 1.1, then dies holding job 2.
is( $owner->query_safe(qq{UPDATE app.jobs SET status = 'done' WHERE id = 1 AND finlive_fence(1, $t1)
                           RETURNING id}),
	'1', 'the fenced write with the token taken under 1.1 passes');
is($owner->query_safe('SELECT finlive_clear(1)'), 't', 'and the owner clears job 1');
kill_client($owner);
ok( defined poll_within($node, $db, 'SELECT status FROM app.jobs WHERE id = 2', 'queued', 60),
	'once the owner dies, Tier-1 requeues its claimed job');
is( $node->safe_psql($db, q{SELECT string_agg(format('%s:%s:%s', job_id, tier, new_status), ' '
                             ORDER BY job_id) FROM finlive_reap_log WHERE target = 'app.jobs'::regclass}),
	'2:1:queued 3:2:done 4:2:done', 'the reap log: only the reaps, never job 1');

$node->stop;
done_testing();
