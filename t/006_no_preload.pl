# Without shared_preload_libraries every finlive function refuses to run.
#
# Rule (SPEC "Loading"): shared_preload_libraries = 'finlive' is required.
# CREATE EXTENSION still installs the SQL objects, but every finlive function
# then raises ERROR with SQLSTATE 55000 and a message that says to add
# finlive to shared_preload_libraries.  No finlive worker runs.  finlive
# settings left in postgresql.conf do not change that: the user still gets
# the same clean error, never a failed session.
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
# Deliberately no shared_preload_libraries.
$node->start;

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION finlive');
is($ret, 0, 'CREATE EXTENSION works without the preload')
  or diag($stderr);
if ($ret != 0)
{
	$node->stop('immediate');
	done_testing();
	exit;
}
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
	'SELECT finlive_stats_reset()',
	'SELECT * FROM finlive_targets()',
	'SELECT * FROM finlive_targets',
	'SELECT * FROM finlive_target_problems()',
	'SELECT * FROM finlive_running_jobs',
	'SELECT * FROM finlive_audit()');

# Every call, in a fresh session each time (the library is loaded anew).
sub check_every_function
{
	my ($phase) = @_;
	for my $call (@calls)
	{
		my $quoted = $call =~ s/'/''/gr;
		my ($stdout, $stderr);
		$node->psql('postgres', "SELECT try_sql('$quoted')",
			stdout => \$stdout, stderr => \$stderr);
		my ($state, $msg, $hint) = error_of($stdout // '');
		is($state, '55000', "$phase: $call: SQLSTATE 55000")
		  or diag("stderr: $stderr");
		like($msg, qr/shared_preload_libraries/,
			"$phase: $call: the message says to use shared_preload_libraries");
		like($msg, qr/finlive/, "$phase: $call: the message names finlive");
	}
	return;
}

check_every_function('no finlive settings');
is($node->safe_psql('postgres', 'SELECT count(*) FROM (' . finlive_processes_sql() . ') w'),
	'0', 'no finlive process (launcher or reaper) runs without the preload');

# finlive settings in postgresql.conf (restart-only ones included), still
# without the preload: the same clean error, not a failure of the session.
$node->append_conf('postgresql.conf', qq{
finlive.database = 'postgres'
finlive.max_owners = 100
finlive.naptime = 1000
});
$node->restart;
check_every_function('with finlive settings');
is($node->safe_psql('postgres', 'SELECT count(*) FROM (' . finlive_processes_sql() . ') w'),
	'0', 'still no finlive process');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is fine');

$node->stop;
done_testing();
