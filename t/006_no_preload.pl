# Without shared_preload_libraries every finlive function refuses to run.
#
# Rule (SPEC "Loading"): shared_preload_libraries = 'finlive' is required.
# CREATE EXTENSION still installs the SQL objects, but every finlive function
# then raises ERROR with SQLSTATE 55000 and a message that says to add
# finlive to shared_preload_libraries.  No finlive worker runs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
# Deliberately no shared_preload_libraries; the setting below is the one a
# preloaded finlive would use, and must be harmless here.
$node->append_conf('postgresql.conf', qq{
finlive.database = 'postgres'
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', try_function_sql());

my @calls = (
	'SELECT finlive_mark(1)',
	q{SELECT finlive_mark(1, 2, 'deploy-staging')},
	'SELECT finlive_clear(1)',
	'SELECT finlive_clear_all()',
	'SELECT finlive_is_active(1)',
	'SELECT finlive_fence(1, 1)',
	'SELECT * FROM finlive_owners()',
	'SELECT * FROM finlive_owners',
	'SELECT finlive_snapshot()',
	q{SELECT finlive_register('jobs', 'runs', 'tasks')},
	q{SELECT finlive_unregister('jobs')},
	'SELECT * FROM finlive_reap_once()',
	'SELECT * FROM finlive_stats()',
	'SELECT * FROM finlive_stats',
	'SELECT finlive_stats_reset()');

for my $call (@calls)
{
	my $quoted = $call =~ s/'/''/gr;
	my ($state, $msg, $hint) = error_of(
		$node->safe_psql('postgres', "SELECT try_sql('$quoted')"));
	is($state, '55000', "$call: SQLSTATE 55000");
	like($msg, qr/shared_preload_libraries/,
		"$call: the message says to use shared_preload_libraries");
	like($msg, qr/finlive/, "$call: the message names finlive");
}

is($node->safe_psql('postgres', 'SELECT count(*) FROM (' . worker_pid_sql() . ') w'),
	'0', 'no finlive worker runs without the preload');

$node->stop;
done_testing();
