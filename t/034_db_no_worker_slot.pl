# No background worker slot for a database's reaper: one WARNING, and the
# reaper starts once a slot frees.
#
# Rule (SPEC [1.3] "Every database"): when no background worker slot is free
# for a database, one WARNING names it and max_worker_processes, and its
# reaper is started once a slot frees.  max_worker_processes = 3 holds the
# launcher and two reapers (no logical replication launcher, no parallel
# workers).  Three databases get the extension: the third gets no reaper,
# one WARNING says so (not one per retry), and when a slot frees -- first a
# reaper's database dropped, then, with the slots full again, a parallel
# query that held the last one ending -- the database waiting gets its
# reaper and is reaped.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_no_worker_slot');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
max_worker_processes = 3
max_logical_replication_workers = 0
max_parallel_workers_per_gather = 0
});
$node->start;
my $reapers = 'SELECT (' . reaper_databases_sql() . ') = ';

sub install
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$node->safe_psql($db, q{SELECT finlive_register('jobs', 'runs', 'tasks')});
	$node->safe_psql($db, q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
	return;
}

# A WARNING about the reaper of database $db that names max_worker_processes
# (in its message, detail or hint).
sub no_slot_warning
{
	my ($db) = @_;
	return qr/WARNING:[^\n]*"$db"(?s:.*)max_worker_processes/;
}

install('d1');
ok($node->poll_query_until('postgres', $reapers . "'d1'"), 'd1 has its reaper');
install('d2');
ok($node->poll_query_until('postgres', $reapers . "'d1,d2'"), 'd2 has its reaper');
ok($node->poll_query_until('d2', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'd2 is reaped');

my $offset = log_offset($node);
install('d3');
ok(wait_for_message($node, no_slot_warning('d3'), $offset, 30),
	'd3: a WARNING names the database and max_worker_processes');
# The launcher tries again every second; several tries go by.  (Seeing "not
# once per try" takes letting several tries pass.)
$node->safe_psql('postgres', 'SELECT pg_sleep(3)');
is(log_count($node, no_slot_warning('d3'), $offset), 1,
	'one WARNING, not one per try');
is($node->safe_psql('postgres', reaper_databases_sql()), 'd1,d2',
	'd3 has no reaper meanwhile');
is($node->safe_psql('d3', 'SELECT status FROM jobs WHERE id = 1'),
	'running', 'and is not reaped');

# A slot frees: d1 is dropped.
$node->safe_psql('postgres', 'DROP DATABASE d1');
my $took = poll_within($node, 'postgres', $reapers . "'d2,d3'", 't', 30);
ok(defined $took && $took < 10,
	sprintf('once a slot frees, d3 gets its reaper (%.1f s)', $took // -1));
ok($node->poll_query_until('d3', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'and is reaped');

# The slots full again (d2, d3), a parallel worker takes the one a restarted
# reaper would need: the reaper of d3 is terminated, and a parallel query
# takes the slot before the launcher's restart delay is over.  d3 waits,
# with one WARNING, for as long as the query runs; when it ends, d3 gets its
# reaper again.
$node->safe_psql('postgres', q{
CREATE TABLE big AS SELECT g FROM generate_series(1, 100000) g;
ANALYZE big;
CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql PARALLEL SAFE
AS $$ SELECT pg_sleep(0.01) IS NOT NULL $$;
});
my $parallel = $node->background_psql('postgres');
my $leader = $parallel->query_safe(q{
SET max_parallel_workers_per_gather = 1;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT pg_backend_pid();
});
my $d3 = $node->safe_psql('postgres', worker_pid_sql('d3'));
$offset = log_offset($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($d3, 60000)");
$parallel->query_until(qr/started/, q{
\echo started
SELECT count(*) FROM big WHERE slow(g);
});
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
		               WHERE backend_type = 'parallel worker'}),
	'a parallel worker holds the third slot');
ok(wait_for_message($node, no_slot_warning('d3'), $offset, 30),
	'd3 waits for a slot again, with a WARNING');
is($node->safe_psql('postgres', reaper_databases_sql()), 'd2',
	'd3 has no reaper while the parallel query runs');
# end the parallel query
$node->safe_psql('postgres', "SELECT pg_cancel_backend($leader)");
eval { $parallel->quit; };    # psql leaves on the error (ON_ERROR_STOP)
$took = poll_within($node, 'postgres', $reapers . "'d2,d3'", 't', 30);
ok(defined $took && $took < 10,
	sprintf('when the parallel query ends, d3 gets its reaper again (%.1f s)', $took // -1));
is(log_count($node, no_slot_warning('d3'), $offset), 1,
	'after one WARNING for that wait');

$node->stop;
done_testing();
