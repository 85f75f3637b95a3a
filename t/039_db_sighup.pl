# Every reaper follows a configuration reload, without restarting.
#
# Rules (SPEC "Settings", "The worker", [1.3] "Every database"): the worker
# follows the server configuration and picks up changes on reload, between
# ticks, without restarting -- each reaper in its own database.  Two
# databases: finlive.reaper = off pauses both reapers, on resumes both; a
# finalize_grace lowered by reload is used by both at their next tick; and
# both are still the same processes.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my @dbs = qw(a b);

my $node = PostgreSQL::Test::Cluster->new('db_sighup');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
});
$node->start;
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
}
$node->safe_psql('a', server_timing_sql());
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'a,b'"),
	'each database has its reaper');
my %pid = map { $_ => $node->safe_psql('postgres', worker_pid_sql($_)) } @dbs;

sub reload_with
{
	my ($setting, $value) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET $setting = $value; SELECT pg_reload_conf();");
	return;
}

# The last tick of the reaper of $db (its state_change, see t/035).
sub last_change
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		'SELECT state_change FROM pg_stat_activity WHERE pid = (' . worker_pid_sql($db) . ')');
}

# Paused: no reaper ticks.
reload_with('finlive.reaper', 'off');
ok($node->poll_query_until('a', q{SELECT ticks_during('1 s') = 0}),
	'finlive.reaper = off: no reaper ticks');
my %change = map { $_ => last_change($_) } @dbs;
$node->safe_psql($_, q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')}) for @dbs;
is($node->safe_psql('a', q{SELECT ticks_during('1.5 s')}), '0',
	'they stay paused');
for my $db (@dbs)
{
	is(last_change($db), $change{$db}, "$db: its reaper made no tick");
	is($node->safe_psql($db, 'SELECT status FROM jobs WHERE id = 1'),
		'running', "$db: nothing is reaped");
}

# Back on: both reap.
reload_with('finlive.reaper', 'on');
for my $db (@dbs)
{
	ok($node->poll_query_until($db, q{SELECT status = 'done' FROM jobs WHERE id = 1}),
		"finlive.reaper = on: $db is reaped again");
}

# A run finished two minutes ago is within the default grace (5 minutes);
# a grace of one minute, by reload, lets both reapers finalize it.
$node->safe_psql($_, q{SELECT add_job(2, 'build', 0, '2 minutes', '20 minutes')}) for @dbs;
my $ticks = $node->safe_psql('a', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'a', "SELECT ticks >= $ticks + 6 FROM finlive_stats"),
	'several ticks go by');
is($node->safe_psql($_, 'SELECT status FROM jobs WHERE id = 2'), 'running',
	"$_: within finalize_grace the job is left running")
  for @dbs;
reload_with('finlive.finalize_grace', 60);
for my $db (@dbs)
{
	ok($node->poll_query_until($db, q{SELECT status = 'done' FROM jobs WHERE id = 2}),
		"finalize_grace = 60 by reload: $db finalizes the job");
}

for my $db (@dbs)
{
	is($node->safe_psql('postgres', worker_pid_sql($db)),
		$pid{$db}, "$db: all of this without restarting its reaper");
}

$node->stop;
done_testing();
