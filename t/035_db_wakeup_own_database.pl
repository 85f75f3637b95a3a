# An owner's exit wakes its own database's reaper, and no other.
#
# Rule (SPEC [1.3] "Every database"; issue 12 item 1): the reaper is woken
# at once when a session that owned jobs in its database ends; an owner's
# exit wakes only its own database's reaper.  Two databases, each with a
# reaper a minute before its next tick and a job deferred to a live
# finalizer.  When the finalizer in one database dies, that database's job
# is reaped well under a second later (timed in the server), by one tick;
# the other reaper makes no tick at all (a reaper shows each tick in
# pg_stat_activity: state active, then idle, each with a new state_change).
# Then the same the other way round.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_wakeup_own');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 60000
finlive.restart_grace = 0
});
$node->start;
my %owner;
for my $db (qw(a b))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, server_timing_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
	$owner{$db} = $node->background_psql($db);
	$owner{$db}->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
	$node->safe_psql($db,
		q{SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes')});
}
for my $db (qw(a b))
{
	ok( $node->poll_query_until(
			'postgres',
			"SELECT state = 'idle' FROM pg_stat_activity
			  WHERE pid = (" . worker_pid_sql($db) . ')'),
		"the reaper of $db waits for its next tick, a minute away");
}

# When did the reaper of $db last start or end a tick?
sub last_change
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		'SELECT state_change FROM pg_stat_activity WHERE pid = ('
		  . worker_pid_sql($db) . ')');
}

for my $pair ([ 'a', 'b' ], [ 'b', 'a' ])
{
	my ($dies, $other) = @$pair;
	my $pid = $owner{$dies}->query_safe('SELECT pg_backend_pid()');
	my $other_before = last_change($other);
	my $ticks = $node->safe_psql('a', 'SELECT ticks FROM finlive_stats');
	my $ms = $node->safe_psql($dies, qq{
		SELECT terminate_and_wait(ARRAY[$pid],
		         \$\$SELECT status = 'done' FROM jobs WHERE id = 1\$\$, '30 s')});
	eval { $owner{$dies}->quit; };
	ok($ms ne '' && $ms < 500,
		sprintf('%s: the job of the dead owner is reaped well under a second later (%.1f ms)',
			$dies, $ms eq '' ? -1 : $ms));
	is($node->safe_psql('a', "SELECT ticks - $ticks FROM finlive_stats"),
		'1', "$dies: by one tick");
	is(last_change($other), $other_before,
		"$other: its reaper made no tick");
	is($node->safe_psql($other, 'SELECT status FROM jobs WHERE id = 1'),
		'running', "$other: its job is still deferred to its live owner")
	  if $dies eq 'a';
}

$node->stop;
done_testing();
