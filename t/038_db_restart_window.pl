# The restart window belongs to the server, not to each reaper's start.
#
# Rules (SPEC "The tiered reaper", [1.3] "Every database"; issue 12 item 1:
# "the restart window is per server, not per reaper start"): for
# finlive.restart_grace after the server started or was promoted, no reap
# that depends on ownership being absent (Tier-1 here) is made.  The window
# opens once, when the server starts:
#  - a reaper that dies and is started again inside the window does not
#    reopen it: its Tier-1 job is reaped when the server's window closes,
#    not restart_grace after the new reaper started;
#  - after the window, a reaper started later -- in a database that got the
#    extension, after a reaper or the launcher died -- reaps at once.
# The launcher's start is the earliest the window can have opened (it opens
# it), so a Tier-1 reap at or after launcher start + restart_grace and
# before new reaper start + restart_grace is the server's window.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $grace = 15;

my $node = PostgreSQL::Test::Cluster->new('db_restart_window');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = $grace
});
$node->start;

sub install
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', claim_owned => true)});
	return;
}

sub backend_start
{
	my ($sql) = @_;
	return $node->safe_psql('postgres',
		"SELECT backend_start FROM pg_stat_activity WHERE pid = ($sql)");
}

ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ') l'),
	'the launcher runs');
my $launcher_start = backend_start(launcher_pid_sql());

# A dead worker's job (Tier-1) in a, whose reaper is restarted inside the
# window.
install('a');
$node->safe_psql('a', q{SELECT add_job(1, NULL, NULL, NULL, '10 minutes')});
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('a') . ') w'),
	'a has its reaper');
my $first = $node->safe_psql('postgres', worker_pid_sql('a'));
$node->safe_psql('postgres', "SELECT pg_terminate_backend($first, 60000)");
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('a') . ") w WHERE pid <> $first"),
	'the reaper of a is started again');
my $second_start = backend_start(worker_pid_sql('a'));
is( $node->safe_psql(
		'postgres',
		"SELECT '$second_start'::timestamptz < '$launcher_start'::timestamptz + interval '$grace s'"),
	't', 'inside the window');
my $inside = $node->safe_psql('a',
	"SELECT status || ' ' || (now() < '$launcher_start'::timestamptz + interval '$grace s')
	   FROM jobs WHERE id = 1");
SKIP:
{
	skip 'the window closed before the check (slow machine)', 1
	  unless $inside =~ / t$/;
	is($inside, 'running t', 'the Tier-1 job is left running inside the window');
}

ok($node->poll_query_until('a', q{SELECT status = 'queued' FROM jobs WHERE id = 1}),
	'the Tier-1 job is requeued once the window closes');
is( $node->safe_psql(
		'a', "SELECT at >= '$launcher_start'::timestamptz + interval '$grace s'
		        FROM finlive_reap_log WHERE job_id = 1"),
	't', 'no sooner than restart_grace after the server started');
is( $node->safe_psql(
		'a', "SELECT at < '$second_start'::timestamptz + interval '$grace s'
		        FROM finlive_reap_log WHERE job_id = 1"),
	't', 'and sooner than restart_grace after the restarted reaper started: '
	  . 'its start did not reopen the window');

# After the window: a reaper started in a new database reaps at once.
install('b');
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('b') . ') w'),
	'b has its reaper');
my $b_start = backend_start(worker_pid_sql('b'));
$node->safe_psql('b', q{SELECT add_job(1, NULL, NULL, NULL, '10 minutes')});
ok( defined poll_within(
		$node, 'b', q{SELECT status FROM jobs WHERE id = 1}, 'queued', $grace - 5),
	'a reaper started after the window reaps Tier-1 at once');
is( $node->safe_psql(
		'b', "SELECT at < '$b_start'::timestamptz + interval '$grace s'
		        FROM finlive_reap_log WHERE job_id = 1"),
	't', 'its start opened no window of its own');

# After the window: a reaper started again after it died reaps at once.
my $b_reaper = $node->safe_psql('postgres', worker_pid_sql('b'));
$node->safe_psql('postgres', "SELECT pg_terminate_backend($b_reaper, 60000)");
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('b') . ") w WHERE pid <> $b_reaper"),
	'the reaper of b is started again');
$node->safe_psql('b', q{SELECT add_job(2, NULL, NULL, NULL, '10 minutes')});
ok( defined poll_within(
		$node, 'b', q{SELECT status FROM jobs WHERE id = 2}, 'queued', $grace - 5),
	'the restarted reaper reaps Tier-1 at once');

# After the window: a new launcher opens none either.
my $launcher = $node->safe_psql('postgres', launcher_pid_sql());
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher, 60000)");
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ") l WHERE pid <> $launcher"),
	'a new launcher runs');
$node->safe_psql('a', q{SELECT add_job(2, NULL, NULL, NULL, '10 minutes')});
ok( defined poll_within(
		$node, 'a', q{SELECT status FROM jobs WHERE id = 2}, 'queued', $grace - 5),
	'after a new launcher, Tier-1 is still reaped at once');

$node->stop;
done_testing();
