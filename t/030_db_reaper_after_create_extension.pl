# A database gets its own reaper when finlive is installed there, without a
# restart.
#
# Rule (SPEC [1.3] "Every database"): with finlive.database = '*' (the
# default) every database in which CREATE EXTENSION finlive has run is
# reaped, each by a reaper of its own, without a restart: a reaper starts
# within finlive.naptime (or 10 s, whichever is longer) of CREATE EXTENSION,
# and reaps there.  A database without the extension has none; a database
# created from a template that has the extension has it too, and gets a
# reaper the same way.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_create_extension');
$node->init;
# finlive.database is left at its default, '*'.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 1000
finlive.restart_grace = 0
});
$node->start;

my $reapers = 'SELECT (' . reaper_databases_sql() . ') = ';

ok($node->poll_query_until('postgres', $reapers . "''"),
	'no database has the extension: no reaper');
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . launcher_pid_sql() . ') l'),
	'the launcher runs');
my $launcher = $node->safe_psql('postgres', launcher_pid_sql());
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

$node->safe_psql('postgres', 'CREATE DATABASE app');
ok($node->poll_query_until('postgres', $reapers . "''"),
	'a new database without the extension gets no reaper');

# CREATE EXTENSION: a reaper within 10 s (naptime 1 s here).
$node->safe_psql('app', 'CREATE EXTENSION finlive');
my $took = poll_within($node, 'postgres', $reapers . "'app'", 't', 30);
ok(defined $took, 'after CREATE EXTENSION the database has a reaper');
ok(defined $took && $took < 10,
	sprintf('within 10 s (%.1f s)', $took // -1));

# It reaps there.
$node->safe_psql('app', app_schema_sql());
$node->safe_psql('app', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
$node->safe_psql('app', q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
ok($node->poll_query_until('app', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'the new reaper finalizes a lost finalization in its database');
is( $node->safe_psql(
		'app', 'SELECT tier || \' \' || new_status FROM finlive_reap_log WHERE job_id = 1'),
	'2 done', 'and logs the reap there');

# A database copied from it has the extension, its targets and jobs: it
# gets a reaper of its own, which reaps its copy of the jobs.
$node->safe_psql('app', q{SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes')});
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE copy TEMPLATE app');
is($ret, 0, 'CREATE DATABASE ... TEMPLATE a database with a reaper works')
  or diag($err);
$took = poll_within($node, 'postgres', $reapers . "'app,copy'", 't', 30);
ok(defined $took && $took < 10,
	sprintf('the copy gets a reaper within 10 s, and app keeps one (%.1f s)', $took // -1));
ok( $node->poll_query_until(
		'copy', q{SELECT string_agg(status, ',' ORDER BY id) = 'done,done' FROM jobs}),
	'the reaper of the copy reaps there');

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'all of this without a server restart');
is($node->safe_psql('postgres', launcher_pid_sql()),
	$launcher, 'nor a new launcher');

$node->stop;
done_testing();
