# finlive's processes leave SIGTERM promptly, idle or in the middle of a
# tick.
#
# Rules (SPEC "The worker", "The tiered reaper"): the worker leaves SIGTERM
# promptly; a termination request is not a job's error: it ends the tick at
# once, with everything of that tick rolled back.  With a one-minute naptime
# an idle reaper that takes SIGTERM (pg_terminate_backend) is gone within
# seconds, not at its next tick; so is a reaper whose gate is sleeping for
# two minutes (finlive.hook_timeout = 0: no limit), and the job that gate
# was deciding is left untouched; so is the launcher; and a fast shutdown
# does not wait for a sleeping gate.  Times are measured inside the server,
# from just before pg_terminate_backend until the process is gone.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_sigterm');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 60000
finlive.restart_grace = 0
finlive.hook_timeout = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', server_timing_sql());
# A gate that sleeps two minutes while the table nap has a row.
$node->safe_psql('postgres', q{
CREATE TABLE nap (x int);
CREATE FUNCTION slow_gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM nap) THEN
        PERFORM pg_sleep(120);
    END IF;
    RETURN true;
END $$;
SELECT finlive_register('jobs', 'runs', 'tasks', gate => 'slow_gate(bigint)');
});

# Terminate $pid and return the milliseconds until it is gone (or '').
sub terminate_ms
{
	my ($pid) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT terminate_and_wait(ARRAY[$pid],
		         'SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid',
		         '90 s')});
}

# An idle reaper, a minute before its next tick.
ok( $node->poll_query_until(
		'postgres',
		"SELECT state = 'idle' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql('postgres') . ')'),
	'the reaper is idle between ticks');
my $reaper = $node->safe_psql('postgres', worker_pid_sql('postgres'));
# A job for the next reaper, whose gate will sleep: this one is a minute
# from its next tick and does not see it.
$node->safe_psql('postgres', q{
INSERT INTO nap VALUES (1);
SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes');
});
my $ms = terminate_ms($reaper);
ok($ms ne '' && $ms < 5000,
	sprintf('an idle reaper leaves SIGTERM within seconds, not at its next tick (%.0f ms)',
		$ms eq '' ? -1 : $ms));

# A reaper in the middle of a tick, its gate asleep: the restarted reaper
# ticks at once and meets the job.
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event = 'PgSleep' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql('postgres') . ')'),
	'a reaper runs a tick whose gate sleeps');
$reaper = $node->safe_psql('postgres', worker_pid_sql('postgres'));
$ms = terminate_ms($reaper);
ok($ms ne '' && $ms < 5000,
	sprintf('it leaves SIGTERM within seconds, not when the gate wakes (%.0f ms)',
		$ms eq '' ? -1 : $ms));
is( $node->safe_psql(
		'postgres',
		q{SELECT status || ' ' || (SELECT count(*) FROM finlive_reap_log)
		    FROM jobs WHERE id = 1}),
	'running 0',
	'the tick it left changed nothing: the job runs, no reap is logged');

# The reaper comes back and, the gate awake, finalizes the job.
$node->safe_psql('postgres', 'DELETE FROM nap');
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'the restarted reaper finalizes the job');

# The launcher leaves SIGTERM promptly too.
my $launcher = $node->safe_psql('postgres', launcher_pid_sql());
$ms = terminate_ms($launcher);
ok($ms ne '' && $ms < 5000,
	sprintf('the launcher leaves SIGTERM within seconds (%.0f ms)',
		$ms eq '' ? -1 : $ms));

# A fast shutdown while a gate sleeps: the server stops long before the gate
# would wake.
$node->safe_psql('postgres', q{
INSERT INTO nap VALUES (1);
SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes');
});
# the restarted reaper is a minute from its next tick: wake it with an owner
# exit of job 2
my $owner = $node->background_psql('postgres');
$owner->query_safe('SELECT finlive_mark(2)');
$owner->quit;
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event = 'PgSleep' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql('postgres') . ')'),
	'a gate sleeps again');
my $start = time();
$node->stop('fast');
my $took = time() - $start;
ok($took < 60,
	sprintf('a fast shutdown does not wait for the sleeping gate (%.1f s)', $took));

done_testing();
