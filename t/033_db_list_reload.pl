# finlive.database as a list: only the databases named are reaped, and a
# reload moves the reapers.
#
# Rules (SPEC "Settings", [1.3] "Every database"): finlive.database is a
# reload setting; '*' reaps every database with the extension, a comma list
# restricts reaping to the databases named, and a change takes effect on
# reload, without a restart: a database no longer named loses its reaper
# (its jobs are no longer reaped), a newly named one gains one, and a
# database named before and after keeps the reaper it had.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_list_reload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
});
$node->start;
for my $db (qw(a b c))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
}
my $reapers = 'SELECT (' . reaper_databases_sql() . ') = ';
ok($node->poll_query_until('postgres', $reapers . "'a,b,c'"),
	"finlive.database = '*': every database with the extension has a reaper");

sub reload_list
{
	my ($list) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET finlive.database = '$list'; SELECT pg_reload_conf();");
	return;
}

# Only a and b.
reload_list('a,b');
my $took = poll_within($node, 'postgres', $reapers . "'a,b'", 't', 30);
ok(defined $took && $took < 10,
	sprintf("finlive.database = 'a,b': c loses its reaper on reload (%.1f s)", $took // -1));
my $b_reaper = $node->safe_psql('postgres', worker_pid_sql('b'));
for my $db (qw(a b c))
{
	$node->safe_psql($db, q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
}
ok($node->poll_query_until('a', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'a is reaped');
ok($node->poll_query_until('b', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'b is reaped');
my $ticks = $node->safe_psql('a', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'a', "SELECT ticks >= $ticks + 6 FROM finlive_stats"),
	'several ticks later');
is($node->safe_psql('c', 'SELECT status FROM jobs WHERE id = 1'),
	'running', 'c, no longer named, is not reaped');

# Now b and c (with spaces around the names).
reload_list(' b , c ');
$took = poll_within($node, 'postgres', $reapers . "'b,c'", 't', 30);
ok(defined $took && $took < 10,
	sprintf("finlive.database = 'b,c': a loses its reaper and c gains one (%.1f s)",
		$took // -1));
is($node->safe_psql('postgres', worker_pid_sql('b')),
	$b_reaper, 'b, named before and after, keeps the reaper it had');
ok($node->poll_query_until('c', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'c is reaped again');
$node->safe_psql($_, q{SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes')})
  for qw(a b);
ok($node->poll_query_until('b', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'b goes on being reaped');
$ticks = $node->safe_psql('a', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'a', "SELECT ticks >= $ticks + 6 FROM finlive_stats"),
	'several ticks later');
is($node->safe_psql('a', 'SELECT status FROM jobs WHERE id = 2'),
	'running', 'a, no longer named, is not reaped');

# Back to every database.
reload_list('*');
ok($node->poll_query_until('postgres', $reapers . "'a,b,c'"),
	"back to '*': every database with the extension has a reaper again");
ok($node->poll_query_until('a', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'and a is reaped again');

$node->stop;
done_testing();
