# The worker follows configuration reloads without restarting.
#
# Rules (SPEC "Settings", "The worker"): the worker follows the server
# configuration and picks up changes on reload (pg_reload_conf()), between
# ticks, without restarting.
#  - finlive.reaper = off pauses the worker: no ticks, no reaps; back on, it
#    resumes.
#  - finlive.enabled = off is the kill-switch: the reaper ignores ownership,
#    so a job it was deferring because its finalizer lives is finalized;
#    back on, live finalizers are respected again.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_reload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 200
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
# ticks_still(d): true when the worker made no tick during d.
$node->safe_psql('postgres', q{
CREATE FUNCTION ticks_still(d interval) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE before bigint; after bigint;
BEGIN
    SELECT ticks INTO before FROM finlive_stats();
    PERFORM pg_sleep_for(d);
    SELECT ticks INTO after FROM finlive_stats();
    RETURN before = after;
END $$;
});

sub reload_with
{
	my ($setting, $value) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET $setting = $value; SELECT pg_reload_conf();");
	return;
}

ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('postgres') . ') w'),
	'the reaper runs');
my $worker_pid = $node->safe_psql('postgres', worker_pid_sql('postgres'));

# A live finalizer owns job 1 (guarded stage, past finalize_grace).
my $owner = $node->background_psql('postgres');
$owner->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', 'SELECT finalizer_defers_total >= 2 FROM finlive_stats'),
	'the worker defers the owned job tick after tick');

# finlive.reaper = off: the worker stops ticking.
reload_with('finlive.reaper', 'off');
ok($node->poll_query_until('postgres', q{SELECT ticks_still('1.5 s')}),
	'after reaper = off the worker stops ticking');
$node->safe_psql('postgres',
	q{SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes')});
is($node->safe_psql('postgres', q{SELECT ticks_still('1.5 s')}),
	't', 'it stays paused (seven naptimes without a tick)');
is($node->safe_psql('postgres', 'SELECT status FROM jobs WHERE id = 2'),
	'running', 'a paused worker reaps nothing');

# finlive.reaper = on: it resumes.
reload_with('finlive.reaper', 'on');
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'after reaper = on the worker reaps again');
is($node->safe_psql('postgres', 'SELECT status FROM jobs WHERE id = 1'),
	'running', 'and still defers the owned job');

# finlive.enabled = off: ownership is ignored, the owned job is finalized.
reload_with('finlive.enabled', 'off');
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'after enabled = off the worker finalizes the owned job');
is($owner->query_safe('SELECT finlive_is_active(1)'),
	't', 'the kill-switch does not touch ownership itself');

# finlive.enabled = on: live finalizers are respected again.  The new owned
# job is created while the worker is paused, so that no tick can see it
# before the worker has read enabled = on (both settings come in one reload).
reload_with('finlive.reaper', 'off');
ok($node->poll_query_until('postgres', q{SELECT ticks_still('1.5 s')}),
	'the worker is paused again');
$owner->query_safe(q{SELECT finlive_mark(3, 3, 'deploy-staging')});
$node->safe_psql('postgres',
	q{SELECT add_job(3, 'deploy-staging', 0, '10 minutes', '20 minutes')});
my $defers = $node->safe_psql('postgres',
	'SELECT finalizer_defers_total FROM finlive_stats');
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET finlive.enabled = on;
	  ALTER SYSTEM SET finlive.reaper = on;
	  SELECT pg_reload_conf();});
ok( $node->poll_query_until(
		'postgres',
		"SELECT finalizer_defers_total >= $defers + 2 FROM finlive_stats"),
	'after enabled = on the worker defers owned jobs again');
is($node->safe_psql('postgres', 'SELECT status FROM jobs WHERE id = 3'),
	'running', 'the owned job stays running');

is($node->safe_psql('postgres', worker_pid_sql('postgres')),
	$worker_pid, 'all of this without restarting the worker');

$owner->quit;
$node->stop;
done_testing();
