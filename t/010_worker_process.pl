# The finlive worker is a visible, self-restarting background process.
#
# Rules (SPEC "The worker"): the preload starts one background worker that
# shows in pg_stat_activity under a name that says finlive, connected to
# finlive.database; it never holds a transaction open between ticks; it is
# restarted by the postmaster within 10 s if it dies (pg_terminate_backend
# included), and the restarted worker goes on reaping.
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

# Exactly one worker, connected to finlive.database.
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql() . ') w'),
	'a finlive worker shows in pg_stat_activity');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE backend_type <> 'client backend'
		     AND (backend_type ILIKE '%finlive%' OR application_name ILIKE '%finlive%')}),
	'1',
	'there is exactly one finlive worker');
ok( $node->poll_query_until(
		'postgres',
		"SELECT datname = 'postgres' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql() . ')'),
	'the worker is connected to finlive.database');

# It reaps by itself (a finished run past finalize_grace, no owner).
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'the worker reaps a lost finalization');

# Between ticks it holds no transaction open.
ok( $node->poll_query_until(
		'postgres',
		'SELECT xact_start IS NULL AND backend_xid IS NULL FROM pg_stat_activity
		  WHERE pid = (' . worker_pid_sql() . ')'),
	'the worker is seen outside any transaction between ticks');

# Terminate it: the postmaster starts a new one within 10 s.  The bound
# below leaves slack for a slow machine; the spec's 10 s is what matters.
my $old_pid = $node->safe_psql('postgres', worker_pid_sql());
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid, 60000)"),
	't', 'the worker is terminated');
my $took = poll_within(
	$node, 'postgres',
	'SELECT count(*) = 1 FROM (' . worker_pid_sql() . ") w WHERE pid <> $old_pid",
	't', 20);
ok(defined $took, 'a new worker is started after pg_terminate_backend');
ok(defined $took && $took < 12,
	sprintf('it is back within about 10 s (took %.1f s)', $took // -1));

# The new worker reaps as the old one did.
$node->safe_psql('postgres',
	q{SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'the restarted worker reaps');

$node->stop;
done_testing();
