# The worker waits quietly until the extension is installed.
#
# Rule (SPEC "The worker"): while the extension is not installed in a
# database that finlive.database names, its reaper waits quietly -- one LOG
# line, not one per tick -- and starts reaping by itself once CREATE
# EXTENSION happens there.  (Under finlive.database = '*' a database without
# the extension has no reaper at all: t/030 and t/032.)
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_waits');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 100
finlive.restart_grace = 0
});
$node->start;

# A LOG line from the server (not a logged statement) that mentions finlive
# and that its extension is missing.
my $waiting_line =
  qr/LOG:\s+(?!statement:).*finlive.*(not installed|not exist|no extension|missing|CREATE EXTENSION)/i;

ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM (' . worker_pid_sql('postgres') . ') w'),
	'the worker runs before the extension exists');
$node->wait_for_log($waiting_line);
pass('the worker logs that it waits for the extension');

# Twenty naptimes later there is still only that one line.  (This is the
# one place that waits a fixed time: "not one per tick" can only be seen by
# letting several ticks go by.)
$node->safe_psql('postgres', q{SELECT pg_sleep(2)});
is(log_count($node, $waiting_line), 1, 'it logs the wait only once');
is(log_count($node, qr/(ERROR|FATAL):/), 0,
	'and raises no error while waiting');

# Install it: the worker starts reaping without a restart or a reload.
my $worker_pid = $node->safe_psql('postgres', worker_pid_sql('postgres'));
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 1}),
	'after CREATE EXTENSION the worker reaps');
is($node->safe_psql('postgres', worker_pid_sql('postgres')),
	$worker_pid, 'the same worker process, never restarted');

# Dropping the extension sends it back to waiting, quietly; installing it
# again resumes reaping.
my $offset = log_offset($node);
$node->safe_psql('postgres', 'DROP EXTENSION finlive');
$node->safe_psql('postgres', 'DROP TABLE jobs, runs, tasks CASCADE');
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});
$node->safe_psql('postgres',
	q{SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes')});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'after DROP and CREATE EXTENSION the worker reaps again');
is(log_count($node, qr/(ERROR|FATAL):/, $offset), 0,
	'without an error in the log');

$node->stop;
done_testing();
