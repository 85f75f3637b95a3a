# A pg_dump / pg_restore round trip keeps finlive's registrations.
#
# Rules (SPEC "Reaper targets": registrations are kept in a table that
# pg_dump carries; "[1.3] A policy per target": pg_dump carries the policy;
# "[1.2] No role becomes another through finlive": a dropped hook leaves its
# target unusable until registered again, and a function created later under
# its name is never called; behaviour.md: after a restore hooks are re-bound
# once by signature):
#  - a database at 1.3 with targets (hooks, claim_owned, quoted names, a
#    target without a tasks table, a full policy) and one created at 1.2 and
#    updated, are dumped with pg_dump -Fc and restored into new databases:
#    the restore prints nothing, the extension comes back at 1.3, every
#    registration comes back field for field (every column of
#    finlive_targets: tables, hooks, registrant, time, search_path, the
#    policy as registered and in effect), the hooks resolve to the restored
#    functions, no restored target has a problem;
#  - the reaper of the restored database (the worker) reaps the restored
#    targets with the restored hooks, as the registrant; the drop trigger
#    still unregisters;
#  - a target whose hook was dropped and recreated under the same name (by
#    another role) before the dump was unusable then and stays unusable after
#    the restore: the recreated function is never called.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
# No reaper in the source databases (their jobs must still be running when
# they are dumped); the restored ones get theirs as soon as they exist.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres, dst13, dst12'
finlive.naptime = 200
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');

my $registrations = q{SELECT * FROM finlive_targets WHERE jobs::text <> '"Orch".sjobs' ORDER BY jobs::text};
my $replaced = q{SELECT * FROM finlive_targets WHERE jobs::text = '"Orch".sjobs'};

# The application: targets in a schema whose name needs quoting, one without
# a tasks table, and one whose hook is replaced before the dump.
sub build_source
{
	my ($db, $version) = @_;
	my $admin = "app_admin_$db";
	my $register_sig = $version eq '1.2'
	  ? 'regclass, regclass, regclass, regprocedure, regprocedure, boolean'
	  : 'regclass, regclass, regclass, regprocedure, regprocedure, boolean,
	     interval, interval, interval, text[], boolean, boolean';
	my $policy = $version eq '1.2' ? ''
	  : q{, finalize_grace => '2 minutes', claim_grace => '10 seconds', max_running => '3 hours',
	     guarded_stages => '{deploy-staging,"odd, stage"}', enabled => true, dry_run => false};
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql('postgres', "CREATE ROLE $admin LOGIN; GRANT CREATE ON DATABASE $db TO $admin");
	$node->safe_psql($db, "CREATE EXTENSION finlive VERSION '$version'");
	$node->safe_psql($db, qq{
GRANT CREATE ON SCHEMA public TO $admin;
GRANT EXECUTE ON FUNCTION finlive_register($register_sig) TO $admin;
SET ROLE $admin;
CREATE SCHEMA "Orch";
CREATE TABLE "Orch".runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE "Orch".tasks (id bigint PRIMARY KEY, stage text);
CREATE TABLE "Orch"."Jobs" (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                            attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON "Orch"."Jobs" (id) WHERE status = 'running';
CREATE TABLE "Orch".advanced (job_id bigint, tier integer, status text, who text);
CREATE FUNCTION "Orch".advance(bigint, integer, text) RETURNS void LANGUAGE plpgsql
    AS \$\$ BEGIN INSERT INTO advanced VALUES (\$1, \$2, \$3, current_user); END \$\$;
CREATE FUNCTION "Orch".green(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SET search_path = "Orch", public;
SELECT public.finlive_register('"Orch"."Jobs"', '"Orch".runs', '"Orch".tasks',
                        '"Orch".advance(bigint,integer,text)', '"Orch".green(bigint)', true $policy);
CREATE TABLE public.plain_runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE public.plain_jobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                                attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON public.plain_jobs (status);
SELECT public.finlive_register('plain_jobs', 'plain_runs');
INSERT INTO "Orch".tasks VALUES (1, 'deploy-staging');
INSERT INTO "Orch".runs VALUES (1, now() - interval '10 minutes', 0);
INSERT INTO "Orch"."Jobs" VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes');
INSERT INTO plain_runs VALUES (7, now() - interval '10 minutes', 3);
INSERT INTO plain_jobs VALUES (7, 'running', 7, NULL, 2, 2, now() - interval '20 minutes');
});
	# A superuser's target whose hook is dropped, and recreated by mallory
	# (who may create in "Orch") under the same name, before the dump.
	$node->safe_psql($db, qq{
GRANT USAGE, CREATE ON SCHEMA "Orch" TO mallory;
CREATE TABLE "Orch".sruns (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE "Orch".sjobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                           attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON "Orch".sjobs (id) WHERE status = 'running';
CREATE TABLE "Orch".sadvanced (job_id bigint, who text);
CREATE FUNCTION "Orch".sadvance(bigint, integer, text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO "Orch".sadvanced VALUES (\$1, current_user)';
SET search_path = pg_catalog;
SELECT public.finlive_register('"Orch".sjobs', '"Orch".sruns', on_reap => '"Orch".sadvance(bigint,integer,text)');
RESET search_path;
DROP FUNCTION "Orch".sadvance(bigint, integer, text);
CREATE TABLE "Orch".replacement_ran (job_id bigint, who text);
GRANT INSERT ON "Orch".replacement_ran TO PUBLIC;
SET ROLE mallory;
CREATE FUNCTION "Orch".sadvance(bigint, integer, text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO "Orch".replacement_ran VALUES (\$1, current_user);
    BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
END \$\$;
RESET ROLE;
INSERT INTO "Orch".sruns VALUES (9, now() - interval '10 minutes', 0);
INSERT INTO "Orch".sjobs VALUES (9, 'running', 9, NULL, 0, 2, now() - interval '20 minutes');
});
	$node->safe_psql($db, "ALTER EXTENSION finlive UPDATE") if $version ne '1.3';
	return;
}

sub round_trip
{
	my ($src, $dst) = @_;
	my $dump = $node->basedir . "/$src.dump";
	my $before = $node->safe_psql($src, $registrations);
	my $replaced_before = $node->safe_psql($src, $replaced);
	is($node->safe_psql($src, "SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
		'1.3', "$src: at 1.3");
	is($node->safe_psql($src, 'SELECT count(*) FROM finlive_targets'), '3', "$src: three targets registered");
	like( $node->safe_psql($src, 'SELECT target || \': \' || problem FROM finlive_target_problems()'),
		qr/^"Orch"\.sjobs: its on_reap function "Orch"\.sadvance\(.*\) was dropped or renamed$/,
		"$src: the target whose hook was dropped and recreated is unusable before the dump");

	$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr($src) ],
		"$src: pg_dump -Fc");
	$node->safe_psql('postgres', "CREATE DATABASE $dst");
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[ 'pg_restore', '--exit-on-error', '-d', $node->connstr($dst), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "$dst: pg_restore exits 0");
	is($stderr, '', "$dst: pg_restore prints no error or warning");

	is($node->safe_psql($dst, "SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
		'1.3', "$dst: the extension is restored at 1.3");
	is($node->safe_psql($dst, $registrations), $before,
		"$dst: every registration is restored field for field (search_path and policy included)");
	is($node->safe_psql($dst, $replaced), $replaced_before,
		"$dst: so is the one whose hook was replaced (its on_reap shown as gone, as in the source)");
	is( $node->safe_psql($dst, q{
			SELECT count(*) FROM finlive_targets
			 WHERE on_reap IS NOT NULL AND gate IS NOT NULL
			   AND on_reap::oid IN (SELECT oid FROM pg_proc WHERE proname = 'advance')
			   AND gate::oid IN (SELECT oid FROM pg_proc WHERE proname = 'green')}),
		'1', "$dst: the hooks resolve to the restored functions");

	# The restored database's reaper.
	ok( defined poll_within(
			$node, $dst,
			q{SELECT (SELECT status FROM "Orch"."Jobs" WHERE id = 1) || ' ' || (SELECT status FROM plain_jobs WHERE id = 7)},
			'done failed', 60),
		"$dst: the worker reaps the restored targets");
	is($node->safe_psql($dst, 'SELECT job_id, tier, status, who FROM "Orch".advanced'),
		"1|2|done|app_admin_$src", "$dst: the restored on_reap hook ran once, as the registrant");
	my $ticks = $node->safe_psql($dst, 'SELECT ticks FROM finlive_stats');
	ok(defined poll_within($node, $dst, "SELECT ticks >= $ticks + 3 FROM finlive_stats", 't', 60),
		"$dst: the worker ticks on");

	# The replaced hook.
	like( $node->safe_psql($dst, 'SELECT target || \': \' || problem FROM finlive_target_problems()'),
		qr/^"Orch"\.sjobs: its on_reap function "Orch"\.sadvance\(.*\) (was dropped or renamed|no longer exists)/,
		"$dst: the target whose hook was replaced before the dump is still unusable");
	is($node->safe_psql($dst, 'SELECT status FROM "Orch".sjobs WHERE id = 9'), 'running',
		"$dst: its job is not reaped");
	is($node->safe_psql($dst, 'SELECT count(*) FROM "Orch".replacement_ran'), '0',
		"$dst: the function created under the hook's name was never called");
	is($node->safe_psql($dst, q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f',
		"$dst: mallory is not superuser");

	# The drop trigger came back with the extension.
	$node->safe_psql($dst, 'DROP TABLE plain_jobs');
	is( $node->safe_psql($dst, q{SELECT string_agg(jobs::text, ',' ORDER BY jobs::text) FROM finlive_targets}),
		'"Orch"."Jobs","Orch".sjobs', "$dst: dropping a restored table unregisters its target");

	# The source was not touched by any of this.
	is($node->safe_psql($src, $registrations), $before, "$src: unchanged");
	$node->safe_psql('postgres', 'ALTER ROLE mallory NOSUPERUSER');
	return;
}

build_source('src13', '1.3');
like( $node->safe_psql('src13', q{SELECT concat_ws(' ', finalize_grace, claim_grace, max_running, guarded_stages,
                                         enabled, dry_run)
                                    FROM finlive_targets WHERE jobs = '"Orch"."Jobs"'::regclass}),
	qr/^00:02:00 00:00:10 03:00:00 \{deploy-staging,"odd, stage"\} t f$/,
	'src13: the target has a full policy');
round_trip('src13', 'dst13');

build_source('src12', '1.2');
is( $node->safe_psql('src12', q{SELECT count(*) FROM finlive_targets
                                 WHERE num_nulls(finalize_grace, claim_grace, max_running, guarded_stages,
                                                 enabled, dry_run) = 6}),
	'3', 'src12: created at 1.2 and updated to 1.3, its registrations have a NULL policy');
round_trip('src12', 'dst12');

$node->stop;
done_testing();
