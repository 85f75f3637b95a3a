# Reapers come back after they die, each in its own database.
#
# Rules (SPEC "The worker", [1.3] "Every database"): a reaper is restarted
# within 10 s if it dies -- each reaper in its own database.  Two databases:
#  - a reaper terminated (pg_terminate_backend) is started again within
#    10 s; the other database's reaper is not touched, and both reap;
#  - a reaper killed with SIGKILL makes the postmaster restart every
#    process; afterwards the launcher and both reapers are back (new
#    processes), no ownership survived, and both databases are reaped;
#  - so after a backend crash.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my @dbs = qw(a b);

my $node = PostgreSQL::Test::Cluster->new('db_crash_restart');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
restart_after_crash = on
});
$node->start;
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
}
my $both = 'SELECT (' . reaper_databases_sql() . ") = 'a,b'";
ok($node->poll_query_until('postgres', $both), 'each database has its reaper');

my $next_job = 1;

# Both databases are reaped: a lost finalization in each becomes done.
sub both_reap
{
	my ($what) = @_;
	my $job = $next_job++;
	$node->safe_psql($_, qq{SELECT add_job($job, 'build', 0, '10 minutes', '20 minutes')})
	  for @dbs;
	for my $db (@dbs)
	{
		ok( $node->poll_query_until(
				$db, "SELECT status = 'done' FROM jobs WHERE id = $job"),
			"$what: $db is reaped");
	}
	return;
}

# One reaper terminated: it alone is started again.
my %pid = map { $_ => $node->safe_psql('postgres', worker_pid_sql($_)) } @dbs;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid{a}, 60000)");
my $took = poll_within($node, 'postgres',
	'SELECT count(*) = 1 FROM (' . worker_pid_sql('a') . ") w WHERE pid <> $pid{a}",
	't', 30);
ok(defined $took && $took < 12,
	sprintf('a terminated reaper is started again within 10 s (%.1f s)', $took // -1));
is($node->safe_psql('postgres', worker_pid_sql('b')),
	$pid{b}, 'the other database\'s reaper is not touched');
both_reap('after a reaper was terminated');

# A crash: a reaper killed with SIGKILL, then a backend.
for my $victim ('reaper', 'backend')
{
	my $owner = $node->background_psql('a');
	$owner->query_safe('SELECT finlive_mark(100)');
	my $launcher = $node->safe_psql('postgres', launcher_pid_sql()) || 0;
	%pid = map { $_ => $node->safe_psql('postgres', worker_pid_sql($_)) } @dbs;
	my $session = $node->background_psql('postgres');
	my $kill = $victim eq 'reaper'
	  ? $pid{b}
	  : $session->query_safe('SELECT pg_backend_pid()');
	my $offset = log_offset($node);
	kill 'KILL', $kill;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		"a $victim killed: the server is back after the crash restart");
	eval { $owner->quit; };
	eval { $session->quit; };
	ok($node->poll_query_until('postgres', $both),
		"after the crash each database has its reaper again");
	is( $node->safe_psql(
			'postgres',
			'SELECT count(*) FROM (' . finlive_processes_sql() . ') p
			  WHERE pid IN (' . join(',', $launcher, values %pid) . ')'),
		'0', 'all of them new processes');
	is($node->safe_psql('a', 'SELECT finlive_is_active(100)'),
		'f', 'no ownership survived the crash');
	both_reap("after a $victim crashed");
}

$node->stop;
done_testing();
