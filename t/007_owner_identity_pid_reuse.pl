# An owner is (pid, backend_start), never its pid alone.
#
# Rule (SPEC "Ownership"): an owner is identified by (pid, backend_start),
# never by pid alone; ownership ends when the session releases all its
# advisory locks and when it ends.  So when the operating system gives a dead
# owner's pid to a new session, nothing of the dead owner passes to the new
# one: the new session does not own the old jobs, cannot clear them, its old
# token does not pass finlive_fence, the reaper does not defer to it, and
# when it marks a job itself it is a new owner with a new token, listed with
# its own backend_start.
#
# The test provokes the pid reuse for real: the dead owner first releases its
# locks with pg_advisory_unlock_all() (leaving metadata behind it, if any is
# left) and then ends; the test then cycles the kernel's process ids until a
# new backend gets that very pid.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('owner_identity');
$node->init;
# The worker is paused: the reaper's view is checked with finlive_reap_once
# (its code path) at the moment the test chooses.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.reaper = off
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});

my $pid_max = 32768;
if (open my $fh, '<', '/proc/sys/kernel/pid_max')
{
	$pid_max = <$fh>;
	chomp $pid_max;
	close $fh;
}

# The first owner marks two jobs in the guarded stage.
my $first = $node->background_psql('postgres');
my ($pid, $first_start) = split /\|/,
  $first->query_safe(
	q{SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()});
my $token = $first->query_safe(q{SELECT finlive_mark(7, 7, 'deploy-staging')});
ok($first->query_safe(q{SELECT finlive_mark(8, 8, 'deploy-staging') > 0}) eq 't',
	'the first owner marks jobs 7 and 8');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(format('%s|%s|%s', job_id, pid, backend_start), ' '
		                    ORDER BY job_id) FROM finlive_owners}),
	"7|$pid|$first_start 8|$pid|$first_start",
	'finlive_owners names the owner by its pid and backend_start');

# It releases every advisory lock inside a transaction it leaves open, and
# ends there.  Nobody looks at the jobs meanwhile, so whatever metadata the
# release leaves behind is still there when the pid comes back.
$first->query_safe('BEGIN');
$first->query_safe('SELECT pg_advisory_unlock_all()');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid, 60000)"),
	't', 'the first owner ends');
eval { $first->quit; };

# A new session that gets the very same pid.  \c opens a new backend in the
# same psql, so each try costs the machine one process id.
my $second = $node->background_psql('postgres');
my $second_pid = $second->query_safe('SELECT pg_backend_pid()');
for my $attempt (1 .. 4)
{
	last if $second_pid == $pid;
	next unless advance_pids_to($pid, 6);
	for (1 .. 16)
	{
		$second_pid = $second->query_safe("\\c\nSELECT pg_backend_pid()");
		last if $second_pid == $pid;
		# past it: someone else took it, cycle once more
		my $past = ($second_pid - $pid) % $pid_max;
		last if $past > 0 && $past < $pid_max / 2;
	}
}

SKIP:
{
	skip "could not get pid $pid for a new session (the machine took it)", 12
	  unless $second_pid == $pid;

	my $second_start = $second->query_safe(
		q{SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()});
	isnt($second_start, $first_start,
		"a new session has the dead owner's pid $pid, with a later backend_start");

	# Nothing of the dead owner is the new session's.
	is($second->query_safe('SELECT finlive_is_active(7) OR finlive_is_active(8)'),
		'f', 'the new session does not see the old jobs as owned (its own view)');
	is($node->safe_psql('postgres', 'SELECT finlive_is_active(7) OR finlive_is_active(8)'),
		'f', 'nor does another session');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM finlive_owners'),
		'0', 'finlive_owners lists no owner');
	is($second->query_safe('SELECT finlive_clear(7)'),
		'f', 'the new session cannot clear a job of the dead owner');
	is($second->query_safe("SELECT finlive_fence(7, $token)"),
		'f', 'the dead owner\'s token does not pass finlive_fence');

	# The reaper does not defer job 8 to the session that has its dead
	# owner's pid (guarded stage, run finished past finalize_grace).
	$node->safe_psql('postgres',
		q{SELECT add_job(8, 'deploy-staging', 0, '10 minutes', '20 minutes')});
	is( $node->safe_psql(
			'postgres', 'SELECT job_id, tier, action FROM finlive_reap_once()'),
		'8|2|done',
		'the reaper finalizes the dead owner\'s job: a live pid is not its owner');
	is( $node->safe_psql(
			'postgres', 'SELECT owner_pid IS NULL FROM finlive_reap_log WHERE job_id = 8'),
		't', 'and logs it as reaped with no owner');

	# When the new session marks job 7 it is a new owner: a first mark, with
	# a larger token, listed under its own identity.
	my $new_token = $second->query_safe(q{SELECT finlive_mark(7, 70, 'deploy')});
	cmp_ok($new_token, '>', $token,
		'the new session\'s mark is a first mark with a larger token, not a re-mark');
	is( $node->safe_psql(
			'postgres',
			q{SELECT format('%s|%s|%s|%s', job_id, pid, backend_start, run_id)
			    FROM finlive_owners}),
		"7|$pid|$second_start|70",
		'finlive_owners lists it with its own backend_start');
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM finlive_owners
			  WHERE pid = $pid AND backend_start = '$first_start'"),
		'0', 'the dead owner\'s (pid, backend_start) is nowhere');
	is( $node->safe_psql(
			'postgres',
			"SELECT finlive_fence(7, $token)::text || finlive_fence(7, $new_token)::text"),
		'falsetrue', 'only the new token passes finlive_fence');
}

$second->quit;
$node->stop;
done_testing();
