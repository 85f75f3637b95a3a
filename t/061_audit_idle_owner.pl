# finlive_audit() names an alive but stuck finalizer.
#
# Rule (1.1 diagnostics, narrowed in 1.2; /work/notes/behaviour.md): a
# running job in a guarded stage, past finalize_grace, whose owner session
# has been idle in transaction for longer than finalize_grace (holding its
# transaction's locks), or has owned the job for longer than max_running, is
# listed with reason stuck_finalizer and the owner's pid: the reaper keeps
# deferring it to a finalizer that does nothing.  A plain idle owner (the
# usual finalizer between two statements), an owner that is busy (running a
# statement), a job still inside the grace, an owner idle in transaction for
# less than the grace, and a job in a stage that is not guarded are not
# listed.  finlive_running_jobs shows the owner's state and wait event next
# to the job.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('audit_idle_owner');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.reaper = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'CREATE EXTENSION finlive');
$node->safe_psql('app', app_schema_sql());
$node->safe_psql('app', q{
CREATE INDEX ON jobs (id) WHERE status = 'running';
SELECT finlive_register('jobs', 'runs', 'tasks');
-- add_job(id, stage, exit_code, finished_ago, started_ago)
SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes');  -- idle owner
SELECT add_job(2, 'deploy-staging', 0, '10 minutes', '20 minutes');  -- idle in transaction
SELECT add_job(3, 'deploy-staging', 0, '10 minutes', '20 minutes');  -- busy owner
SELECT add_job(4, 'testing',        0, '10 minutes', '20 minutes');  -- stage not guarded
SELECT add_job(5, 'deploy-staging', 0, '-1 hour',    '20 minutes');  -- never past the grace
});

# The audit as an operator runs it, with a grace of a few seconds.
sub audit
{
	my ($grace) = @_;
	return $node->safe_psql('app', qq{
		SET finlive.finalize_grace = '$grace';
		SET finlive.guarded_stages = 'deploy-staging';
		SELECT string_agg(format('%s:%s', reason, job_id), ' ' ORDER BY job_id)
		  FROM finlive_audit()});
}

my %owner;
for my $job (1 .. 5)
{
	$owner{$job} = $node->background_psql('app');
	my $stage = $job == 4 ? 'testing' : 'deploy-staging';
	ok($owner{$job}->query_safe("SELECT finlive_mark($job, $job, '$stage') > 0") eq 't',
		"owner of job $job marks it");
}
my %pid = map { $_ => $owner{$_}->query_safe('SELECT pg_backend_pid()') } keys %owner;

# Owner 2 opens a transaction and stays in it; owner 3 runs a long statement.
$owner{2}->query_safe('BEGIN; SELECT 1;');
$owner{3}->query_until(qr/busy/, "\\echo busy\nSELECT pg_sleep(60);\n");
ok( defined poll_within(
		$node, 'app',
		"SELECT state FROM pg_stat_activity WHERE pid = $pid{3}", 'active', 30),
	'owner 3 is busy');

# Nobody has been idle for 6 seconds yet: nothing is stuck.
is(audit('6s'), '', 'owners idle for less than the grace are not stuck');

# After the grace, the owner idle in transaction is a stuck finalizer; the
# plain idle one, the busy one, the unguarded stage and the job inside the
# grace are not.
ok( defined poll_within(
		$node, 'app', q{
		SET finlive.finalize_grace = '6s';
		SET finlive.guarded_stages = 'deploy-staging';
		SELECT string_agg(format('%s:%s', reason, job_id), ' ' ORDER BY job_id)
		  FROM finlive_audit()},
		'stuck_finalizer:2', 30),
	'an owner idle in transaction past the grace is a stuck finalizer');
is(audit('6s'), 'stuck_finalizer:2',
	'a plain idle owner past the grace is not (it is between two statements)');
is( $node->safe_psql('app', q{
		SET finlive.finalize_grace = '6s';
		SELECT string_agg(format('%s|%s', job_id, pid), ' ' ORDER BY job_id)
		  FROM finlive_audit()}),
	"2|$pid{2}",
	'the row names the owner pid');
like( $node->safe_psql('app', q{
		SET finlive.finalize_grace = '6s';
		SELECT detail FROM finlive_audit() WHERE job_id = 2}),
	qr/^stage deploy-staging, run finished .*; session ${\ $pid{2}} has been idle in transaction since .*finalize_grace/,
	'the detail says what the owner has been doing, and since when');

# An owner that has owned its job for longer than max_running is stuck
# too, idle, idle in transaction or busy alike.
ok( defined poll_within(
		$node, 'app', q{
		SET finlive.finalize_grace = '6s';
		SET finlive.max_running = '7s';
		SET finlive.guarded_stages = 'deploy-staging';
		SELECT string_agg(format('%s:%s', reason, job_id), ' ' ORDER BY job_id)
		  FROM finlive_audit()},
		'stuck_finalizer:1 stuck_finalizer:2 stuck_finalizer:3', 30),
	'owners that have owned their job for longer than max_running are stuck');
like( $node->safe_psql('app', q{
		SET finlive.finalize_grace = '6s';
		SET finlive.max_running = '7s';
		SELECT detail FROM finlive_audit() WHERE job_id = 1}),
	qr/session ${\ $pid{1}} has owned it since .*max_running/,
	'the detail says since when it has owned the job');

# The view shows each owner's state next to its job.
is( $node->safe_psql('app', q{
		SELECT string_agg(format('%s:%s:%s', job_id, state, guarded), ' ' ORDER BY job_id)
		  FROM finlive_running_jobs}),
	'1:idle:t 2:idle in transaction:t 3:active:t 4:idle:f 5:idle:t',
	'finlive_running_jobs shows each owner\'s state');
is( $node->safe_psql('app', qq{
		SELECT wait_event FROM finlive_running_jobs WHERE job_id = 3}),
	'PgSleep', 'and its wait event');

# With the kill-switch off the reaper ignores ownership: nothing is stuck.
is( $node->safe_psql('app', q{
		SET finlive.enabled = off;
		SET finlive.finalize_grace = '6s';
		SELECT count(*) FROM finlive_audit()}),
	'0', 'kill-switch off: no stuck finalizer');

# A role without pg_read_all_stats cannot see other roles' sessions' state,
# so it cannot tell; pg_monitor can.
$node->safe_psql('app', q{
	CREATE ROLE watcher LOGIN;
	ALTER ROLE watcher SET finlive.finalize_grace = '6s';
	GRANT SELECT ON jobs, runs, tasks TO watcher;});
is( $node->safe_psql('app', q{
		SELECT count(*) FROM finlive_audit()}, extra_params => [ '-U', 'watcher' ]),
	'0', 'without pg_read_all_stats the owners\' state is hidden');
$node->safe_psql('app', 'GRANT pg_monitor TO watcher');
is( $node->safe_psql('app', q{
		SELECT string_agg(job_id::text, ' ' ORDER BY job_id) FROM finlive_audit()},
		extra_params => [ '-U', 'watcher' ]),
	'2', 'pg_monitor sees the stuck finalizer');

$owner{$_}->quit for grep { $_ != 3 } keys %owner;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid{3})");
eval { $owner{3}->quit; };
$node->stop;
done_testing();
