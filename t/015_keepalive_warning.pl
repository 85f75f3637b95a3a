# finlive warns at start when dead clients would go unnoticed for hours.
#
# Rule (SPEC "The worker"): a dead owner is seen at once only when its
# session really ends; a client host that crashes leaves a half-open
# connection the server notices only when TCP gives up (two hours by
# default).  At start finlive logs one WARNING when tcp_keepalives_idle /
# tcp_user_timeout and client_connection_check_interval leave that window
# open -- as the defaults do -- and none when they are set.  With a reaper
# per database ([1.3]) it is still one WARNING per server start, logged by
# the launcher: not one per reaper, nor one per reaper restart.
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
# The server listens on TCP as well, so the window is real.  Every database
# with the extension gets a reaper (finlive.database = '*', the default).
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 100
listen_addresses = '127.0.0.1'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql($_, 'CREATE EXTENSION finlive') for qw(postgres app);

# A WARNING whose message, detail or hint is about these settings.
my $keepalive_warning =
  qr/WARNING:(?s:.*)(keepalive|tcp_user_timeout|client_connection_check_interval)/i;

# Default TCP settings: one WARNING, at start.
ok(wait_for_message($node, $keepalive_warning, 0, 60),
	'with default TCP settings finlive warns at start');
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'app,postgres'"),
	'both databases have their reaper');
ok( $node->poll_query_until(
		'postgres', 'SELECT ticks >= 10 FROM finlive_stats'),
	'the reapers keep ticking');
is(log_count($node, $keepalive_warning), 1,
	'the warning is logged once, not once per tick nor once per reaper');

# A reaper that dies and is started again does not warn again.
my $reaper = $node->safe_psql('postgres', worker_pid_sql('app'));
$node->safe_psql('postgres', "SELECT pg_terminate_backend($reaper, 60000)");
ok( $node->poll_query_until(
		'postgres',
		'SELECT count(*) = 1 FROM (' . worker_pid_sql('app') . ") w WHERE pid <> $reaper"),
	'the reaper of app is started again');
my $ticks = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'postgres', "SELECT ticks >= $ticks + 10 FROM finlive_stats"),
	'and ticks');
is(log_count($node, $keepalive_warning), 1,
	'a restarted reaper does not warn again');

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
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'app,postgres'"),
	'after a restart both reapers run');
ok( $node->poll_query_until(
		'postgres', 'SELECT ticks >= 10 FROM finlive_stats'),
	'and tick');
is(log_count($node, $keepalive_warning, $offset), 0,
	'with keepalives and a client check interval set there is no warning');

$node->stop;
done_testing();
