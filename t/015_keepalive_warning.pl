# The worker warns at start when dead clients would go unnoticed for hours.
#
# Rule (SPEC "The worker"): a dead owner is seen at once only when its
# session really ends; a client host that crashes leaves a half-open
# connection the server notices only when TCP gives up (two hours by
# default).  At start the worker logs one WARNING when tcp_keepalives_idle /
# tcp_user_timeout and client_connection_check_interval leave that window
# open -- as the defaults do -- and none when they are set.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('keepalive_warning');
$node->init;
# The server listens on TCP as well, so the window is real.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 100
listen_addresses = '127.0.0.1'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');

# A WARNING whose message, detail or hint is about these settings.
my $keepalive_warning =
  qr/WARNING:(?s:.*)(keepalive|tcp_user_timeout|client_connection_check_interval)/i;

# Default TCP settings: one WARNING, at start.
ok(wait_for_message($node, $keepalive_warning, 0, 60),
	'with default TCP settings the worker warns at start');
ok( $node->poll_query_until(
		'postgres', 'SELECT ticks >= 5 FROM finlive_stats'),
	'the worker keeps ticking');
is(log_count($node, $keepalive_warning), 1,
	'the warning is logged once, not once per tick');

# Settings that bound the detection of a dead client: no warning.
$node->stop;
$node->append_conf('postgresql.conf', qq{
tcp_keepalives_idle = 60
tcp_keepalives_interval = 10
tcp_keepalives_count = 3
tcp_user_timeout = 60000
client_connection_check_interval = 10000
});
my $offset = log_offset($node);
$node->start;
ok( $node->poll_query_until(
		'postgres', 'SELECT ticks >= 5 FROM finlive_stats'),
	'the restarted worker has started and ticks');
is(log_count($node, $keepalive_warning, $offset), 0,
	'with keepalives and a client check interval set there is no warning');

$node->stop;
done_testing();
