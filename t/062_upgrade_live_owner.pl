# ALTER EXTENSION finlive UPDATE keeps the owners of other sessions.
#
# Rule (upgrades): updating 1.0 to 1.1 changes nothing a 1.0 user relies on.
# A finalizer in another session that owns a job while the administrator
# runs ALTER EXTENSION finlive UPDATE keeps its ownership and token: the
# reaper (the background worker, running all along) keeps deferring its job,
# it fences its final write with its old token, and when it dies the worker
# reaps the job it left behind.  The update itself neither waits for nor
# disturbs the owner.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('upgrade_live_owner');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.finalize_grace = 300
});
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION finlive VERSION '1.0'");
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{
CREATE INDEX ON jobs (id) WHERE status = 'running';
SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes');
SELECT add_job(2, 'deploy-staging', 0, '10 minutes', '20 minutes');
});

# Two finalizers own their jobs; the worker defers both.
my $f1 = $node->background_psql('postgres');
my $f2 = $node->background_psql('postgres');
my $t1 = $f1->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
my $t2 = $f2->query_safe(q{SELECT finlive_mark(2, 2, 'deploy-staging')});
my $f2_pid = $f2->query_safe('SELECT pg_backend_pid()');
# Registered only now: the worker (200 ms naptime) must not see the jobs
# before their finalizers own them.
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
ok( defined poll_within(
		$node, 'postgres',
		'SELECT finalizer_defers_total >= 2 FROM finlive_stats', 't', 30),
	'the worker defers both owned jobs under 1.0');

my $registration = 'SELECT jobs, runs, tasks, registered_at FROM finlive_targets';
my $before = $node->safe_psql('postgres', $registration);

# The update, while both owners live.
my $ticks = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
$node->safe_psql('postgres', 'ALTER EXTENSION finlive UPDATE');
is( $node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'finlive'"),
	'1.1', 'the extension is at 1.1');
is($node->safe_psql('postgres', $registration), $before, 'the registration is kept');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(format('%s:%s', job_id, token), ' ' ORDER BY job_id)
		    FROM finlive_owners}),
	"1:$t1 2:$t2", 'both owners and their tokens are kept');

# The worker keeps ticking and keeps deferring.
ok( defined poll_within(
		$node, 'postgres', "SELECT ticks > $ticks + 2 FROM finlive_stats", 't', 30),
	'the worker keeps ticking after the update');
is( $node->safe_psql('postgres', 'SELECT string_agg(status, \',\' ORDER BY id) FROM jobs'),
	'running,running', 'both jobs are still deferred, not reaped');
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM finlive_running_jobs WHERE guarded AND owner_pid IS NOT NULL'),
	'2', 'the 1.1 view shows both guarded owners');

# Finalizer 1 finishes, fencing its final write with the token from 1.0.
is( $f1->query_safe(qq{
		UPDATE jobs SET status = 'done' WHERE id = 1 AND finlive_fence(1, $t1)
		RETURNING id}),
	'1', 'the fenced final write with the old token succeeds');
is($f1->query_safe('SELECT finlive_clear(1)'), 't', 'and it clears');
$f1->quit;

# Finalizer 2 dies: the worker reaps its job.
kill_client($f2);
ok( defined poll_within(
		$node, 'postgres', 'SELECT status FROM jobs WHERE id = 2', 'done', 30),
	'the worker reaps the job of the finalizer that died after the update');
is( $node->safe_psql('postgres',
		'SELECT tier, old_status, new_status FROM finlive_reap_log WHERE job_id = 2'),
	'2|running|done', 'logged as a Tier-2 reap');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM finlive_reap_log WHERE job_id = 1'),
	'0', 'the job finalized by its owner was never reaped');

$node->stop;
done_testing();
