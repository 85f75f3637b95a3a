# The worker is woken at once when an owner session ends.
#
# Rule (SPEC "The worker"): besides its naptime, the worker is woken at once
# when a session that owned jobs in its database ends, so a job already past
# the grace whose finalizer just died is reaped within a fraction of a second
# rather than at the next tick.  With a 60 s naptime, a deferred job whose
# owner is terminated must be reaped long before the next timed tick.  (The
# bound below is generous; it only has to be well under the naptime.)
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_wakeup');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 60000
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});

# A live finalizer owns job 1, in a guarded stage, long past finalize_grace.
my $owner = $node->background_psql('postgres');
my $owner_pid = $owner->query_safe('SELECT pg_backend_pid()');
$owner->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes')});

# While the owner lives, the reaper defers (checked on the worker's code path).
is( $node->safe_psql(
		'postgres', 'SELECT job_id, tier, action FROM finlive_reap_once()'),
	'1|2|deferred',
	'a tick defers the job while its finalizer lives');

ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql() . ') w'),
	'the worker runs');

my $ticks_before = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');

# The finalizer dies.
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($owner_pid, 60000)"),
	't', 'the owner is terminated');
eval { $owner->quit; };

my $took = poll_within($node, 'postgres',
	q{SELECT status FROM jobs WHERE id = 1}, 'done', 15);
ok(defined $took,
	sprintf('the job is reaped long before the 60 s naptime (%.2f s)',
		$took // -1));
is( $node->safe_psql(
		'postgres',
		q{SELECT tier || ' ' || new_status FROM finlive_reap_log WHERE job_id = 1}),
	'2 done',
	'it was reaped as a Tier-2 finalization');
cmp_ok($node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats'),
	'>', $ticks_before, 'by a worker tick that the owner\'s exit triggered');

$node->stop;
done_testing();
