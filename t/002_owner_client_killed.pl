# Ownership ends when the owner's client process dies.
#
# Rule (SPEC "Ownership"): ownership ends when the session ends for any
# reason.  When the client process of an owning session is killed with
# SIGKILL, its socket closes, the server backend sees the disconnect and
# exits, and the ownership goes with it -- soon, without anyone calling
# finlive_clear.  This holds whether the owner was idle or inside an open
# transaction.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('owner_client_killed');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');

# Owner A is idle; owner B is idle inside an open transaction.
my $idle = $node->background_psql('postgres');
my $idle_pid = $idle->query_safe('SELECT pg_backend_pid()');
$idle->query_safe(q{SELECT finlive_mark(43, 1, 'deploy-staging')});

my $in_xact = $node->background_psql('postgres');
my $in_xact_pid = $in_xact->query_safe('SELECT pg_backend_pid()');
$in_xact->query_safe('BEGIN');
$in_xact->query_safe('SELECT finlive_mark(44)');

is( $node->safe_psql(
		'postgres', 'SELECT count(*) FROM finlive_owners WHERE job_id IN (43, 44)'),
	'2',
	'both jobs are owned');

# Kill both client processes (not the backends).
kill_client($idle);
kill_client($in_xact);

# The backends notice the closed sockets and exit; ownership disappears.
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity
		  WHERE pid IN ($idle_pid, $in_xact_pid)"),
	'the owners\' backends exit after their clients die');
ok( $node->poll_query_until(
		'postgres',
		'SELECT NOT finlive_is_active(43) AND NOT finlive_is_active(44)'),
	'the jobs are no longer active');
is( $node->safe_psql(
		'postgres', 'SELECT count(*) FROM finlive_owners'),
	'0',
	'finlive_owners is empty');

# The jobs are free for another session.
is( $node->safe_psql(
		'postgres',
		'SELECT finlive_mark(43) IS NOT NULL AND finlive_mark(44) IS NOT NULL'),
	't',
	'another session can mark both jobs');

$node->stop;
done_testing();
