# ALTER EXTENSION finlive UPDATE straight from 1.1 to 1.3, then pg_dump and
# pg_restore: the grants on finlive_register survive both.
#
# Rules (SPEC "[1.3] A policy per target", "Privileges", "Reaper targets":
# registrations are carried by pg_dump; behaviour.md "Versions"):
#  - one ALTER EXTENSION finlive UPDATE takes a 1.1 database to 1.3 (through
#    1.2) with an owner alive in another session: it keeps its jobs and
#    tokens; registrations keep every field, the 1.1 search_path
#    'pg_catalog, pg_temp', and get a NULL policy (the server settings);
#  - EXECUTE granted under 1.1 on finlive_register (which 1.3 replaces with a
#    function of twelve arguments), finlive_mark and finlive_reap_once stays
#    granted, and PUBLIC gets nothing;
#  - pg_dump -Fc / pg_restore of the updated database restores the same
#    privileges (the same ACL on every finlive function), the registrations
#    field for field, and a reaper that reaps the restored target with its
#    hooks, as the registrant, who can also register through its grant.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('upgrade_direct_dump');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.finalize_grace = 300
});
$node->start;

my $db = 'direct';
$node->safe_psql('postgres', "CREATE ROLE regist LOGIN; CREATE ROLE ops LOGIN; CREATE DATABASE $db");
$node->safe_psql($db, "CREATE EXTENSION finlive VERSION '1.1'");
$node->safe_psql($db, q{
GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass, regprocedure,
                                          regprocedure, boolean),
                          finlive_mark(bigint, bigint, text) TO regist;
GRANT EXECUTE ON FUNCTION finlive_reap_once(), finlive_stats_reset() TO ops;
CREATE SCHEMA app AUTHORIZATION regist;
SET ROLE regist;
CREATE TABLE app.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE app.tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE app.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 2,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON app.jobs (id) WHERE status = 'running';
CREATE TABLE app.advanced (job_id bigint, tier integer, status text, who text);
CREATE FUNCTION app.advance(bigint, integer, text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO app.advanced VALUES ($1, $2, $3, current_user)';
CREATE FUNCTION app.pass(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
RESET ROLE;
-- the registration, as finlive_register of 1.1 wrote it
INSERT INTO finlive_target (jobs, runs, tasks, on_reap, gate, claim_owned, registered_by, registered_at)
VALUES ('app.jobs', 'app.runs', 'app.tasks', 'app.advance(bigint,integer,pg_catalog.text)',
        'app.pass(bigint)', false, 'regist', '2024-01-02 03:04:05+00');
INSERT INTO app.tasks VALUES (1, 'deploy-staging'), (2, 'build');
});
$node->safe_psql($db, try_function_sql());

my $owner = $node->background_psql($db, extra_params => [ '-U', 'regist' ]);
my $token = $owner->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
$node->safe_psql($db, q{
INSERT INTO app.runs VALUES (1, now() - interval '10 minutes', 0);
INSERT INTO app.jobs VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes');
});

my $registration = q{
	SELECT jobs::text, runs::text, tasks::text, on_reap::text, gate::text, claim_owned,
	       registered_by::text, registered_at
	  FROM finlive_targets};
my $before = $node->safe_psql($db, $registration);

# The update, straight to the default version.
$node->safe_psql($db, 'ALTER EXTENSION finlive UPDATE');
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
	'1.3', 'one ALTER EXTENSION UPDATE takes 1.1 to 1.3');
is( $node->safe_psql($db, q{SELECT string_agg(job_id || ':' || token, ' ') FROM finlive_owners}),
	"1:$token", 'the owner keeps its job and its token');
is($node->safe_psql($db, $registration), $before, 'the registration keeps every field');
is( $node->safe_psql($db, q{SELECT concat_ws('|', search_path, finalize_grace, claim_grace, max_running,
                                           guarded_stages, enabled, dry_run)
                             FROM finlive_targets}),
	'pg_catalog, pg_temp', 'its search_path is the pinned one of 1.1, its policy NULL');
is( $node->safe_psql($db, q{SELECT concat_ws('|', effective_finalize_grace, effective_max_running,
                                           effective_enabled, effective_dry_run) FROM finlive_targets}),
	'00:05:00|01:30:00|t|f', 'so the server settings are in effect');

my $register13 = 'finlive_register(regclass, regclass, regclass, regprocedure, regprocedure,
                  boolean, interval, interval, interval, text[], boolean, boolean)';
my $privileges = qq{SELECT concat_ws(' ',
	has_function_privilege('regist', '$register13', 'EXECUTE'),
	has_function_privilege('regist', 'finlive_mark(bigint, bigint, text)', 'EXECUTE'),
	has_function_privilege('ops', 'finlive_reap_once()', 'EXECUTE'),
	has_function_privilege('ops', 'finlive_stats_reset()', 'EXECUTE'),
	has_function_privilege('public', '$register13', 'EXECUTE'),
	has_function_privilege('public', 'finlive_mark(bigint, bigint, text)', 'EXECUTE'),
	has_function_privilege('public', 'finlive_reap_once()', 'EXECUTE'),
	has_function_privilege('ops', '$register13', 'EXECUTE'))};
is($node->safe_psql($db, $privileges), 't t t t f f f f',
	'every grant made under 1.1 survives, finlive_register\'s on the new function; PUBLIC has none');

# The reaper reaps under 1.3: the owned finalization is deferred, a due job
# is finalized through the 1.1 hooks.
$node->safe_psql($db, q{
INSERT INTO app.runs VALUES (2, now() - interval '1 hour', 0);
INSERT INTO app.jobs VALUES (2, 'running', 2, 2, 0, 2, now() - interval '2 hours');
});
ok(defined poll_within($node, $db, 'SELECT status FROM app.jobs WHERE id = 2', 'done', 60),
	'the reaper reaps after the update');
is($node->safe_psql($db, 'SELECT status FROM app.jobs WHERE id = 1'), 'running',
	'the owned finalization is left to its owner');
is($node->safe_psql($db, q{SELECT string_agg(job_id || ':' || who, ' ') FROM app.advanced}),
	'2:regist', 'the 1.1 hook ran, as the registrant');
$owner->quit;

# -------------------------------------------------------------------------
# pg_dump / pg_restore of the updated database
# -------------------------------------------------------------------------

my $acls = q{SELECT string_agg(p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '-'), E'\n'
                              ORDER BY p.oid::regprocedure::text)
               FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
               JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'finlive'};
my $acls_before = $node->safe_psql($db, $acls);
my $reg_before = $node->safe_psql($db, "$registration ORDER BY 1");
my $dump = $node->basedir . '/direct.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr($db) ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_restore exits 0');
is($stderr, '', 'pg_restore prints no error or warning');
is($node->safe_psql('restored', $acls), $acls_before,
	'every finlive function has the same ACL after the restore');
is($node->safe_psql('restored', $privileges), 't t t t f f f f',
	'the grants on finlive_register, finlive_mark, finlive_reap_once and finlive_stats_reset survive the restore');
is($node->safe_psql('restored', "$registration ORDER BY 1"), $reg_before,
	'the registration is restored field for field');
is($node->safe_psql('restored', 'SELECT search_path FROM finlive_targets'),
	'pg_catalog, pg_temp', 'with its search_path');
is( $node->safe_psql('restored', q{SET ROLE regist; SET search_path = app;
	SELECT public.try_sql($$SELECT public.finlive_register('app.jobs', 'app.runs', 'app.tasks',
	    'app.advance(bigint,integer,text)', 'app.pass(bigint)', finalize_grace => '1 second')$$)}),
	'ok', 'regist registers in the restored database through its restored grant');
$node->safe_psql('restored', q{
INSERT INTO app.runs VALUES (3, now() - interval '1 hour', 0);
INSERT INTO app.jobs VALUES (3, 'running', 3, 2, 0, 2, now() - interval '2 hours');
});
ok( defined poll_within(
		$node, 'restored', 'SELECT string_agg(status, \',\' ORDER BY id) FROM app.jobs',
		'done,done,done', 60),
	'the restored database\'s reaper reaps its target (the restored owned job too: its owner is gone)');
is($node->safe_psql('restored', q{SELECT string_agg(job_id || ':' || who, ' ' ORDER BY job_id) FROM app.advanced}),
	'1:regist 2:regist 3:regist', 'with the restored hooks, as the registrant');

$node->stop;
done_testing();
