# A pg_dump / pg_restore round trip keeps finlive's registrations.
#
# Rule (SPEC "Reaper targets"): registrations are kept in a table that
# pg_dump carries (pg_extension_config_dump).  A database with finlive and
# registered targets (hooks, claim_owned, a quoted schema and table names, a
# target without a tasks table) is dumped with pg_dump -Fc and restored with
# pg_restore into a new database: the restore runs without an error, the
# extension comes back at the same version, every registration comes back
# field for field (hooks resolved to the restored functions, the registering
# role, the registration time), the drop trigger still unregisters, and the
# reaper works on the restored targets.  The same holds for a database that
# was created at 1.0 and updated.
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
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
});
$node->start;

my $registrations = q{
	SELECT jobs::text, runs::text, coalesce(tasks::text, '-'),
	       coalesce(on_reap::text, '-'), coalesce(gate::text, '-'),
	       claim_owned, registered_by::text, registered_at
	  FROM finlive_targets ORDER BY jobs::text};

# The application: two targets, one in a schema whose name needs quoting.
sub build_source
{
	my ($db, $version) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql('postgres',
		"CREATE ROLE app_admin_$db LOGIN; GRANT CREATE ON DATABASE $db TO app_admin_$db");
	$node->safe_psql($db, "CREATE EXTENSION finlive VERSION '$version'");
	$node->safe_psql($db, "GRANT CREATE ON SCHEMA public TO app_admin_$db");
	$node->safe_psql($db, qq{
GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass,
                          regprocedure, regprocedure, boolean) TO app_admin_$db;
SET ROLE app_admin_$db;
CREATE SCHEMA "Orch";
CREATE TABLE "Orch".runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE "Orch".tasks (id bigint PRIMARY KEY, stage text);
CREATE TABLE "Orch"."Jobs" (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                            attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON "Orch"."Jobs" (id) WHERE status = 'running';
CREATE TABLE "Orch".advanced (job_id bigint, tier integer, status text);
CREATE FUNCTION "Orch".advance(bigint, integer, text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO "Orch".advanced VALUES (\$1, \$2, \$3)';
CREATE FUNCTION "Orch".green(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SELECT finlive_register('"Orch"."Jobs"', '"Orch".runs', '"Orch".tasks',
                        '"Orch".advance(bigint,integer,text)', '"Orch".green(bigint)', true);
CREATE TABLE public.plain_runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE public.plain_jobs (id bigint PRIMARY KEY, status text, run_id bigint, task_id bigint,
                                attempts integer, max_attempts integer, started_at timestamptz);
CREATE INDEX ON public.plain_jobs (status);
SELECT finlive_register('plain_jobs', 'plain_runs');
INSERT INTO "Orch".tasks VALUES (1, 'deploy-staging');
INSERT INTO "Orch".runs VALUES (1, now() - interval '10 minutes', 0);
INSERT INTO "Orch"."Jobs" VALUES (1, 'running', 1, 1, 0, 2, now() - interval '20 minutes');
INSERT INTO plain_runs VALUES (7, now() - interval '10 minutes', 3);
INSERT INTO plain_jobs VALUES (7, 'running', 7, NULL, 2, 2, now() - interval '20 minutes');
});
	$node->safe_psql($db, "ALTER EXTENSION finlive UPDATE")
	  if $version ne '1.1';
	return;
}

sub round_trip
{
	my ($src, $dst) = @_;
	my $dump = $node->basedir . "/$src.dump";
	my $before = $node->safe_psql($src, $registrations);
	my $version_before = $node->safe_psql($src,
		"SELECT extversion FROM pg_extension WHERE extname = 'finlive'");
	is($node->safe_psql($src, 'SELECT count(*) FROM finlive_targets'),
		'2', "$src: two targets registered");

	$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr($src) ],
		"$src: pg_dump -Fc");
	$node->safe_psql('postgres', "CREATE DATABASE $dst");
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[ 'pg_restore', '--exit-on-error', '-d', $node->connstr($dst), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "$dst: pg_restore exits 0");
	is($stderr, '', "$dst: pg_restore prints no error or warning");

	is( $node->safe_psql($dst,
			"SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
		$version_before, "$dst: the extension is restored at the same version");
	is($node->safe_psql($dst, $registrations),
		$before, "$dst: every registration is restored field for field");
	is( $node->safe_psql($dst, q{
			SELECT count(*) FROM finlive_targets
			 WHERE on_reap IS NOT NULL AND gate IS NOT NULL
			   AND on_reap::oid IN (SELECT oid FROM pg_proc WHERE proname = 'advance')}),
		'1', "$dst: the hooks resolve to the restored functions");
	is($node->safe_psql($dst, 'SELECT count(*) FROM finlive_target_problems()'),
		'0', "$dst: no restored target is broken");

	# The reaper works on the restored targets, as their registrant.
	is( $node->safe_psql($dst, q{
			SET finlive.restart_grace = 0;
			SELECT string_agg(format('%s:%s:%s:%s', target, job_id, tier, action), ' '
			                  ORDER BY job_id)
			  FROM finlive_reap_once()}),
		'"Orch"."Jobs":1:2:done plain_jobs:7:2:failed',
		"$dst: the reaper reaps the restored targets");
	is($node->safe_psql($dst, 'SELECT job_id, tier, status FROM "Orch".advanced'),
		'1|2|done', "$dst: the restored on_reap hook ran once");

	# The drop trigger came back with the extension.
	$node->safe_psql($dst, 'DROP TABLE plain_jobs');
	is( $node->safe_psql($dst, 'SELECT string_agg(jobs::text, \',\') FROM finlive_targets'),
		'"Orch"."Jobs"', "$dst: dropping a restored table unregisters its target");

	# The source was not touched by any of this.
	is($node->safe_psql($src, $registrations), $before, "$src: unchanged");
	return;
}

build_source('src11', '1.1');
round_trip('src11', 'dst11');

build_source('src10', '1.0');
is( $node->safe_psql('src10',
		"SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
	'1.1', 'src10: created at 1.0 and updated to 1.1');
round_trip('src10', 'dst10');

$node->stop;
done_testing();
