# The reaper ticks every finlive.naptime, and follows a reload of it.
#
# Rules (SPEC "Settings", "The worker"): every finlive.naptime the reaper
# runs a tick; finlive.naptime is a reload setting, picked up between ticks
# without a restart.  The ticks the server counts (finlive_stats.ticks)
# over an interval, measured inside the server, are compared with what the
# naptime allows: at a naptime of 250 ms, 4 s hold about 16 ticks and no
# more than 17; at 2 s, no more than 3; back at 250 ms, many again.  (Lower
# bounds are loose: a loaded machine may delay a tick, never add one.)
# Nothing else makes the reaper tick here: no owner ends, no
# finlive_reap_once runs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_naptime_reload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 250
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', server_timing_sql());

ok( $node->poll_query_until(
		'postgres', 'SELECT ticks >= 2 FROM finlive_stats'),
	'the reaper ticks');
my $reaper = $node->safe_psql('postgres', worker_pid_sql('postgres'));

sub reload_naptime
{
	my ($ms) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET finlive.naptime = $ms; SELECT pg_reload_conf();");
	# the server (and so the reaper) has read it once this session sees it
	ok( $node->poll_query_until(
			'postgres', "SELECT setting = '$ms' FROM pg_settings WHERE name = 'finlive.naptime'"),
		"finlive.naptime = $ms ms is loaded");
	return;
}

my $n = $node->safe_psql('postgres', q{SELECT ticks_during('4 s')});
ok($n >= 8 && $n <= 17, "naptime 250 ms: $n ticks in 4 s (at most 17)");

reload_naptime(2000);
# The tick in progress or due under the old naptime may still come.
$node->safe_psql('postgres', q{SELECT ticks_during('0.5 s')});
$n = $node->safe_psql('postgres', q{SELECT ticks_during('4 s')});
ok($n >= 1 && $n <= 3, "naptime 2 s after a reload: $n ticks in 4 s (at most 3)");

reload_naptime(250);
# A shorter naptime counts from the last tick: no waiting out the 2 s.
$n = $node->safe_psql('postgres', q{SELECT ticks_during('4 s')});
ok($n >= 8 && $n <= 17, "naptime 250 ms again: $n ticks in 4 s (at most 17)");

is($node->safe_psql('postgres', worker_pid_sql('postgres')),
	$reaper, 'all of this without restarting the reaper');

$node->stop;
done_testing();
