# A burst of owner exits costs a few ticks, not one each.
#
# Rule (SPEC "The worker"): the reaper is woken at once when a session that
# owned jobs in its database ends, and "a burst of such wake-ups costs one
# tick, not one each"; [1.3] the first exit after a quiet period starts a
# tick at once, and the exits that arrive while a tick runs are handled
# together by one more tick (issue 12: a burst of 40 owner exits reaped in
# at most 3 ticks within 0.5 s).  Forty finalizers, each owning one
# deferred job, are terminated at once; the time until all forty jobs are
# done is measured inside the server, and finlive_stats.ticks is read before
# and after.  The naptime is a minute, so no timed tick comes in between.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $owners = 40;

my $node = PostgreSQL::Test::Cluster->new('owner_exit_burst');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 60000
finlive.restart_grace = 0
max_connections = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', 'CREATE EXTENSION dblink');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', server_timing_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
$node->safe_psql('postgres', qq{
SELECT add_job(j, 'deploy-staging', 0, '10 minutes', '20 minutes')
  FROM generate_series(1, $owners) j});

# One session holds forty connections (dblink), each the finalizer of one
# job: forty owner sessions.
my $connstr = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my $holder = $node->background_psql('postgres');
is( $holder->query_safe(qq{
	SELECT count(*) FROM generate_series(1, $owners) j,
	       LATERAL (SELECT dblink_connect('o' || j, '$connstr')) c,
	       LATERAL dblink('o' || j,
	                      format('SELECT finlive_mark(%s, %s, %L)', j, j, 'deploy-staging'))
	                 AS t(token bigint)
	 WHERE token > 0}),
	$owners, "$owners sessions each own one job");
my $pids = $holder->query_safe(qq{
	SELECT string_agg(pid::text, ',') FROM generate_series(1, $owners) j,
	       LATERAL dblink('o' || j, 'SELECT pg_backend_pid()') AS t(pid int)});
is(scalar(my @p = split /,/, $pids), $owners, 'with a backend each');

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM finlive_reap_once() WHERE action = 'deferred'}),
	$owners, 'a tick defers every job to its live finalizer');

# The reaper is idle after its first full tick: the next one is a minute
# away.
ok( $node->poll_query_until(
		'postgres',
		"SELECT state = 'idle' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql('postgres') . ')'),
	'the reaper waits for its next tick');
my $ticks_before = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');

# All forty finalizers die at once.
my $ms = $node->safe_psql('postgres', qq{
	SELECT terminate_and_wait(ARRAY[$pids],
	         \$\$SELECT count(*) = $owners FROM jobs WHERE status = 'done'\$\$, '30 s')});
ok($ms ne '', "all $owners jobs are reaped after their finalizers die");
ok($ms ne '' && $ms < 500,
	sprintf('within 0.5 s of the first exit (%.1f ms)', $ms eq '' ? -1 : $ms));
my $ticks = $node->safe_psql('postgres', "SELECT ticks - $ticks_before FROM finlive_stats");
ok($ticks >= 1 && $ticks <= 3, "in at most 3 ticks, not one per exit ($ticks)");
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE tier = 2 AND new_status = 'done') || '/' || count(*)
		    FROM finlive_reap_log}),
	"$owners/$owners", 'each job once, as a Tier-2 finalization');

$holder->quit;
$node->stop;
done_testing();
