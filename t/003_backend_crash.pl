# Ownership does not survive a backend crash.
#
# Rule (SPEC "Ownership"): ownership ends when the session ends for any
# reason, a backend crash included.  When a backend dies by SIGKILL the
# postmaster resets shared memory and restarts; afterwards no session owns
# anything -- finlive_owners is empty, pg_locks holds none of finlive's
# advisory locks -- the jobs can be marked again, and finlive's processes
# come back: the launcher and the reaper of finlive.database.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('backend_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');

# Two owners, four jobs; a third session will be the one that crashes.
my $owner1 = $node->background_psql('postgres');
my $owner1_pid = $owner1->query_safe('SELECT pg_backend_pid()');
$owner1->query_safe(
	'SELECT finlive_mark(1), finlive_mark(2), finlive_mark(3)');
my $owner2 = $node->background_psql('postgres');
$owner2->query_safe(q{SELECT finlive_mark(4, 4, 'deploy-staging')});

is($node->safe_psql('postgres', 'SELECT count(*) FROM finlive_owners'),
	'4', 'four jobs are owned before the crash');

# finlive's own key space: advisory locks whose objsubid is neither 1 nor 2.
my $objsubid = $node->safe_psql('postgres',
	"SELECT DISTINCT objsubid FROM pg_locks
	  WHERE locktype = 'advisory' AND pid = $owner1_pid");
like($objsubid, qr/^\d+$/, 'the owner holds advisory locks of one objsubid');
ok($objsubid != 1 && $objsubid != 2,
	"finlive's objsubid ($objsubid) differs from core's 1 and 2");

ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('postgres') . ') w'),
	'the reaper of postgres runs before the crash');
my $worker_before = $node->safe_psql('postgres', worker_pid_sql('postgres'));
my $launcher_before = $node->safe_psql('postgres', launcher_pid_sql()) || 0;

# Crash a backend: SIGKILL makes the postmaster reinitialize everything.
my $victim = $node->background_psql('postgres');
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
my $log_offset = log_offset($node);
kill 'KILL', $victim_pid;

$node->wait_for_log(qr/all server processes terminated; reinitializing/,
	$log_offset);
ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
	'the server accepts connections again after the crash restart');
eval { $owner1->quit; };
eval { $owner2->quit; };
eval { $victim->quit; };

is($node->safe_psql('postgres', 'SELECT count(*) FROM finlive_owners'),
	'0', 'no owners survive the crash');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks
		  WHERE locktype = 'advisory' AND objsubid = $objsubid"),
	'0',
	'pg_locks holds no finlive lock');
is( $node->safe_psql(
		'postgres',
		'SELECT bool_or(finlive_is_active(j)) FROM generate_series(1, 4) j'),
	'f',
	'no job is active');
is( $node->safe_psql(
		'postgres',
		q{SELECT (finlive_snapshot()->>'active')::int}),
	'0',
	'finlive_snapshot counts no owner');
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM generate_series(1, 4) j
		  WHERE finlive_mark(j) IS NOT NULL'),
	'4',
	'every job can be marked again');

# The launcher is started again by the postmaster, and it starts the reaper.
ok( $node->poll_query_until(
		'postgres',
		'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ") w
		  WHERE pid <> $launcher_before"),
	'a new finlive launcher runs after the crash restart');
ok( $node->poll_query_until(
		'postgres',
		'SELECT count(*) = 1 FROM (' . worker_pid_sql('postgres') . ") w
		  WHERE pid <> $worker_before"),
	'a new reaper of postgres runs after the crash restart');

$node->stop;
done_testing();
