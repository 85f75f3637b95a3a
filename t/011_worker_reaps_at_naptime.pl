# The worker reaps finlive.database by itself, every finlive.naptime.
#
# Rules (SPEC "The worker", "The tiered reaper"): the worker connects to
# finlive.database and every finlive.naptime runs a tick, on the same code
# path as finlive_reap_once: a running job whose run finished past
# finalize_grace with exit_code 0 and no live finalizer becomes 'done'; the
# reap is logged in finlive_reap_log, announced with NOTIFY finlive_reaped
# (its target schema-qualified, [1.2]), and counted in finlive_stats.  A
# database that finlive.database does not name gets no reaper, even with the
# extension installed: its targets are not reaped.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_naptime');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
});
# finlive.database names a database that exists before the server starts.
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->stop;
$node->append_conf('postgresql.conf', "finlive.database = 'app'");
$node->start;

for my $db ('app', 'postgres')
{
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
}

ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('app') . ') w'),
	'a reaper is connected to finlive.database');
is($node->safe_psql('postgres', reaper_databases_sql()),
	'app', 'and no reaper to the database it does not name');

my $listener = $node->background_psql('app');
$listener->query_safe('LISTEN finlive_reaped');

# A job in another database, then one in finlive.database.
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
$node->safe_psql('app',
	q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});

ok( $node->poll_query_until(
		'app', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'the worker finalizes the lost finalization to done');
is( $node->safe_psql(
		'app',
		q{SELECT tier || ' ' || old_status || ' ' || new_status || ' ' || dry_run
		    FROM finlive_reap_log WHERE job_id = 1}),
	'2 running done false',
	'the reap is logged as a Tier-2 reap');
is( $node->safe_psql(
		'app',
		'SELECT ticks > 0 AND reaped_tier2 >= 1 AND last_tick_at IS NOT NULL
		   FROM finlive_stats'),
	't',
	'finlive_stats counts the worker\'s ticks and the reap');

# psql shows a notification after the next command it runs; poll for it.
my $notices = '';
for (1 .. 100)
{
	$notices .= $listener->query_safe('SELECT 1');
	last if $notices =~ /Asynchronous notification/;
	usleep(50_000);
}
like(
	$notices,
	qr/Asynchronous notification "finlive_reaped" with payload "(\{.*\})"/,
	'a NOTIFY finlive_reaped was sent');
my ($payload) = $notices =~ /with payload "(\{.*?\})"/;
$payload //= '{}';
$payload =~ s/'/''/g;
like(
	$node->safe_psql(
		'app',
		"SELECT concat_ws(' ', p->>'target', p->>'job_id', p->>'tier', p->>'status')
		   FROM (SELECT '$payload'::jsonb AS p) s"),
	qr/^public\.jobs 1 2 done$/,
	'the payload names the target (schema-qualified), job, tier and status');
$listener->quit;

# Later jobs are reaped on later ticks, without any nudge.
$node->safe_psql('app',
	q{SELECT add_job(2, 'build', 1, '10 minutes', '20 minutes', 0, 2)});
ok( $node->poll_query_until(
		'app', q{SELECT status = 'queued' AND attempts = 1 FROM jobs WHERE id = 2}),
	'a failed finished run is requeued by a later tick');

# The other database's job was there before both and is still untouched.
is($node->safe_psql('postgres', 'SELECT status FROM jobs WHERE id = 1'),
	'running', 'a target outside finlive.database is not reaped by the worker');
is($node->safe_psql('postgres', reaper_databases_sql()),
	'app', 'which still has no reaper');

$node->stop;
done_testing();
