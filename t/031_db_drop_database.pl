# DROP DATABASE never waits for, or fails because of, the database's reaper.
#
# Rule (SPEC [1.3] "Every database"): a reaper stops after DROP DATABASE,
# which it never blocks -- as an autovacuum worker, it leaves when a session
# needs its database free.  Without that, DROP DATABASE waits 5 s for the
# other sessions to leave and then fails with "database ... is being
# accessed by other users".  Two databases: one whose reaper is idle (a
# minute before its next tick), one whose reaper is in the middle of a tick,
# its gate asleep for two minutes (finlive.hook_timeout = 0).  Each DROP
# DATABASE succeeds at once; the reaper is gone, and the launcher and the
# reapers of the other databases are not disturbed.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_drop_database');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 60000
finlive.restart_grace = 0
finlive.hook_timeout = 0
});
$node->start;
for my $db (qw(idle busy keep))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
}
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'busy,idle,keep'"),
	'each database has its reaper');
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ') l'),
	'the launcher runs');
my $launcher = $node->safe_psql('postgres', launcher_pid_sql());
my $keeper = $node->safe_psql('postgres', worker_pid_sql('keep'));

# In busy, the reaper's next tick meets a gate that sleeps two minutes.
$node->safe_psql('busy', app_schema_sql());
$node->safe_psql('busy', q{
CREATE FUNCTION slow_gate(job bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT pg_sleep(120) IS NOT NULL $$;
SELECT finlive_register('jobs', 'runs', 'tasks', gate => 'slow_gate(bigint)');
SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes');
});
# an owner exit of job 1 wakes the reaper for it (the naptime is a minute)
my $owner = $node->background_psql('busy');
$owner->query_safe('SELECT finlive_mark(1)');
$owner->quit;
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event = 'PgSleep' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql('busy') . ')'),
	'the reaper of busy is in a tick, its gate asleep');
ok( $node->poll_query_until(
		'postgres',
		"SELECT state = 'idle' FROM pg_stat_activity
		  WHERE pid = (" . worker_pid_sql('idle') . ')'),
	'the reaper of idle waits for its next tick');

for my $db (qw(idle busy))
{
	my $start = time();
	my ($ret, $out, $err) = $node->psql('postgres', "DROP DATABASE $db");
	my $took = time() - $start;
	is($ret, 0, "DROP DATABASE $db succeeds") or diag($err);
	unlike($err, qr/being accessed by other users/,
		"DROP DATABASE $db is not refused for its reaper");
	ok($took < 5,
		sprintf('DROP DATABASE %s does not wait for its reaper (%.2f s)', $db, $took));
	is( $node->safe_psql(
			'postgres', "SELECT count(*) FROM pg_database WHERE datname = '$db'"),
		'0', "database $db is gone");
}
ok($node->poll_query_until('postgres', 'SELECT (' . reaper_databases_sql() . ") = 'keep'"),
	'their reapers are gone, the other database keeps its own');
is($node->safe_psql('postgres', worker_pid_sql('keep')),
	$keeper, 'the reaper of the other database was not disturbed');
is($node->safe_psql('postgres', launcher_pid_sql()),
	$launcher, 'nor the launcher');

# A database made later under a dropped one's name gets a reaper once the
# extension is installed there (nothing of the dropped one stands in its way).
$node->safe_psql('postgres', 'CREATE DATABASE idle');
$node->safe_psql('idle', 'CREATE EXTENSION finlive');
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'idle,keep'"),
	'a new database of a dropped one\'s name gets its reaper');

$node->stop;
done_testing();
