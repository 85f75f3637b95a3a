# finlive's background processes are visible and come back when they die.
#
# Rules (SPEC "The worker", [1.3] "Every database"): the preload starts a
# launcher, and the launcher one reaper per database it reaps; each shows in
# pg_stat_activity under a name that says finlive, a reaper with its
# database.  A reaper that dies (pg_terminate_backend included) is restarted
# within 10 s and goes on reaping; so is the launcher, and a new launcher
# does not start a second reaper beside the one still running.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_process');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 200
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
$node->safe_psql('postgres', server_timing_sql());

# A launcher (no database) and exactly one reaper, in finlive.database.
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('postgres') . ') w'),
	'a finlive reaper of postgres shows in pg_stat_activity');
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FILTER (WHERE datname IS NULL) || \' \' ||
		        count(*) FILTER (WHERE datname = \'postgres\') || \' \' || count(*)
		   FROM (' . finlive_processes_sql() . ') p'),
	'1 1 2',
	'there is one launcher, with no database, and one reaper, in postgres');

# It reaps by itself (a finished run past finalize_grace, no owner).
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'the reaper reaps a lost finalization');

# Terminate the reaper: the launcher starts a new one within 10 s.  The
# bound below leaves slack for a slow machine; the spec's 10 s is what
# matters.
my $old_pid = $node->safe_psql('postgres', worker_pid_sql('postgres'));
my $launcher_pid = $node->safe_psql('postgres', launcher_pid_sql()) || 0;
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid, 60000)"),
	't', 'the reaper is terminated');
my $took = poll_within(
	$node, 'postgres',
	'SELECT count(*) = 1 FROM (' . worker_pid_sql('postgres') . ") w WHERE pid <> $old_pid",
	't', 30);
ok(defined $took, 'a new reaper is started after pg_terminate_backend');
ok(defined $took && $took < 12,
	sprintf('it is back within about 10 s (took %.1f s)', $took // -1));
is($node->safe_psql('postgres', launcher_pid_sql()) || 0,
	$launcher_pid, 'by the same launcher, which ran all along');

# The new reaper reaps as the old one did.
$node->safe_psql('postgres',
	q{SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'the restarted reaper reaps');

# Terminate the launcher: the postmaster starts a new one within 10 s, and
# the reaper that runs stays the only one.
my $reaper_pid = $node->safe_psql('postgres', worker_pid_sql('postgres'));
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ') w'),
	'the launcher runs');
$launcher_pid = $node->safe_psql('postgres', launcher_pid_sql());
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher_pid, 60000)"),
	't', 'the launcher is terminated');
$took = poll_within(
	$node, 'postgres',
	'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ") w WHERE pid <> $launcher_pid",
	't', 30);
ok(defined $took && $took < 12,
	sprintf('a new launcher is back within about 10 s (took %.1f s)', $took // -1));
# The new launcher's first pass starts a reaper wherever it thinks one is
# missing: for two seconds after it came, never a second reaper.
my $reapers = 'SELECT count(*) FROM (' . finlive_processes_sql() . ') p WHERE datname IS NOT NULL';
$reapers =~ s/'/''/g;
is($node->safe_psql('postgres', "SELECT max_during('$reapers', '2 s')"),
	'1', 'the new launcher starts no second reaper');
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(pid::text, \',\') FROM (' . finlive_processes_sql() . ') p
		  WHERE datname IS NOT NULL'),
	$reaper_pid,
	'the reaper that ran is still the only one');
$node->safe_psql('postgres',
	q{SELECT add_job(3, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 3}),
	'and it goes on reaping');

$node->stop;
done_testing();
