# Ownership ends when the owning session is terminated.
#
# Rule (SPEC "Ownership"): a session owns a job while it holds finlive's
# session-level advisory lock; ownership ends when the session ends for any
# reason, pg_terminate_backend included.  Once the owner's backend is gone,
# the job is not active, is not listed by finlive_owners, and another session
# can take it at once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('owner_terminated');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');

# The owner marks job 42 and stays connected, idle.
my $owner = $node->background_psql('postgres');
my $owner_pid = $owner->query_safe('SELECT pg_backend_pid()');
my $token = $owner->query_safe(
	q{SELECT finlive_mark(42, 7, 'deploy-staging')});
ok($token > 0, 'the owner gets a positive token');

# Another session sees the ownership, with the owner's identity.
is($node->safe_psql('postgres', 'SELECT finlive_is_active(42)'),
	't', 'job 42 is active while its owner lives');
is( $node->safe_psql(
		'postgres',
		"SELECT pid = $owner_pid AND run_id = 7 AND stage = 'deploy-staging'
		        AND token = $token
		   FROM finlive_owners WHERE job_id = 42"),
	't',
	'finlive_owners lists the owner, its run, stage and token');
is($node->safe_psql('postgres', 'SELECT finlive_mark(42) IS NULL'),
	't', 'another session cannot take a live owner\'s job');

# Terminate the owner and wait until its backend has exited
# (pg_terminate_backend with a timeout waits for the process to go).
is( $node->safe_psql(
		'postgres', "SELECT pg_terminate_backend($owner_pid, 60000)"),
	't',
	'the owner backend is terminated');
eval { $owner->quit; };

# Once the backend is gone, its ownership is gone: no polling needed.
is($node->safe_psql('postgres', 'SELECT finlive_is_active(42)'),
	'f', 'job 42 is no longer active');
is($node->safe_psql('postgres', 'SELECT count(*) FROM finlive_owners'),
	'0', 'finlive_owners is empty');
is( $node->safe_psql(
		'postgres', q{SELECT finlive_snapshot()->'active'}),
	'0',
	'finlive_snapshot counts no active owner');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks WHERE pid = $owner_pid"),
	'0',
	'the dead owner holds no lock');

# Another session can take the job, and gets a newer token.
my $heir = $node->background_psql('postgres');
my $heir_pid = $heir->query_safe('SELECT pg_backend_pid()');
is($heir->query_safe("SELECT finlive_mark(42) > $token"),
	't', 'another session marks job 42 and gets a larger token');
is( $node->safe_psql(
		'postgres', 'SELECT pid FROM finlive_owners WHERE job_id = 42'),
	$heir_pid,
	'the new owner is listed');
$heir->quit;

$node->stop;
done_testing();
