# DROP EXTENSION finlive stops the database's reaper; CREATE EXTENSION brings
# one back.
#
# Rule (SPEC [1.3] "Every database"): under finlive.database = '*' a
# database is reaped while finlive is installed there: its reaper stops
# after DROP EXTENSION, and no reaper is started there again until CREATE
# EXTENSION (then within naptime or 10 s).  The reapers of other databases
# go on.  The naptime is a minute, so "stops" cannot mean "at the next
# tick".
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_drop_extension');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 60000
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', server_timing_sql());
for my $db (qw(app other))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
}
my $reapers = 'SELECT (' . reaper_databases_sql() . ') = ';
ok($node->poll_query_until('postgres', $reapers . "'app,other,postgres'"),
	'each database with the extension has its reaper');
my $other = $node->safe_psql('postgres', worker_pid_sql('other'));

my $offset = log_offset($node);
$node->safe_psql('app', 'DROP EXTENSION finlive');
my $took = poll_within($node, 'postgres', $reapers . "'other,postgres'", 't', 30);
ok(defined $took && $took < 10,
	sprintf('after DROP EXTENSION the reaper of app stops, long before its next tick (%.1f s)',
		$took // -1));

# It stays away, while the launcher looks at every database again (a new
# database and a reaper exit make it look).
$node->safe_psql('postgres', 'CREATE DATABASE bystander');
my $count_app = q{SELECT count(*) FROM pg_stat_activity
                   WHERE datname = 'app' AND backend_type <> 'client backend'};
$count_app =~ s/'/''/g;
is($node->safe_psql('postgres', "SELECT max_during('$count_app', '3 s')"),
	'0', 'no reaper (nor any background process) comes back to app');
is(log_count($node, qr/(WARNING|ERROR|FATAL):.*\bapp\b|(WARNING|ERROR|FATAL):.*finlive_target/, $offset),
	0, 'and the drop is quiet: no warning or error about app');
is($node->safe_psql('postgres', worker_pid_sql('other')),
	$other, 'the reaper of another database goes on undisturbed');

# The application's tables stay; with the extension back, so is a reaper.
$node->safe_psql('app', 'CREATE EXTENSION finlive');
$took = poll_within($node, 'postgres', $reapers . "'app,other,postgres'", 't', 30);
ok(defined $took && $took < 10,
	sprintf('after CREATE EXTENSION again app has a reaper within 10 s (%.1f s)',
		$took // -1));
$node->safe_psql('app', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
my $owner = $node->background_psql('app');
$owner->query_safe('SELECT finlive_mark(1)');
$node->safe_psql('app', q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
$owner->quit;
ok($node->poll_query_until('app', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'and it reaps');

$node->stop;
done_testing();
