# Two databases, two policies: each reaper reaps its database by its own
# targets' policy.
#
# Rules (SPEC [1.3] "Every database", "A policy per target"): every database
# with the extension is reaped by a reaper of its own; each target's policy
# overrides the server settings for that target alone.  The same jobs
# tables in two databases, registered with different policies:
#   a: finalize_grace 1 minute, max_running 1 hour, guarded_stages {build};
#   b: finalize_grace 1 hour, max_running 3 hours, dry run.
# The same four jobs in each:
#   1: stage deploy-staging, run finished 10 minutes ago, owner alive;
#   2: stage build, run finished 10 minutes ago, owner alive;
#   3: stage build, run unfinished, started 2 hours ago;
#   4: stage build, run finished 2 hours ago, no owner.
# a: 1 done (not a guarded stage there), 2 deferred, 3 queued by Tier-3,
#    4 done.
# b: 1, 2 and 3 left alone (within its grace and ceiling), 4 finalized in a
#    dry run (the server's guarded stage is deploy-staging): logged only.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('db_policies');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.guarded_stages = 'deploy-staging'
});
$node->start;

my %policy = (
	a => q{finalize_grace => '1 minute', max_running => '1 hour',
	       guarded_stages => '{build}'},
	b => q{finalize_grace => '1 hour', max_running => '3 hours', dry_run => true});
my %owner;
for my $db (qw(a b))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
	$node->safe_psql($db, app_schema_sql());
	$owner{$db} = $node->background_psql($db);
	$owner{$db}->query_safe(
		q{SELECT finlive_mark(1, 1, 'deploy-staging'), finlive_mark(2, 2, 'build')});
	$node->safe_psql($db, qq{
SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes');
SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes');
SELECT add_job(3, 'build', NULL, NULL, '2 hours');
SELECT add_job(4, 'build', 0, '2 hours', '3 hours');
SELECT finlive_register('jobs', 'runs', 'tasks', $policy{$db});
});
}

is( $node->safe_psql(
		'a', q{SELECT format('%s %s %s %s', effective_finalize_grace, effective_max_running,
		                      effective_guarded_stages, effective_dry_run)
		         FROM finlive_targets}),
	'00:01:00 01:00:00 {build} f', 'a: finlive_targets shows its own policy');
is( $node->safe_psql(
		'b', q{SELECT format('%s %s %s %s', effective_finalize_grace, effective_max_running,
		                      effective_guarded_stages, effective_dry_run)
		         FROM finlive_targets}),
	'01:00:00 03:00:00 {deploy-staging} t', 'b: and b its own');

my $statuses = q{SELECT string_agg(id || ':' || status, ' ' ORDER BY id) FROM jobs};
ok( defined poll_within(
		$node, 'a', $statuses, '1:done 2:running 3:queued 4:done', 30),
	'a is reaped by its policy');
is( $node->safe_psql(
		'a', q{SELECT string_agg(format('%s:%s:%s', job_id, tier, dry_run), ' ' ORDER BY job_id)
		         FROM finlive_reap_log}),
	'1:2:f 3:3:f 4:2:f', 'a: Tier-2 for 1 and 4, Tier-3 for 3, none a dry run');
cmp_ok($node->safe_psql('a', 'SELECT finalizer_defers_total FROM finlive_stats'),
	'>', 0, 'a: job 2 is deferred to its live finalizer');

ok( $node->poll_query_until(
		'b', q{SELECT count(*) >= 3 FROM finlive_reap_log WHERE job_id = 4 AND dry_run}),
	'b is reaped by its policy: job 4, tick after tick, in a dry run');
is($node->safe_psql('b', $statuses), '1:running 2:running 3:running 4:running',
	'b: no job changes');
is( $node->safe_psql(
		'b', q{SELECT string_agg(DISTINCT format('%s:%s:%s', job_id, tier, new_status), ' ')
		         FROM finlive_reap_log}),
	'4:2:done', 'b: only job 4 is past b\'s grace or ceiling');

# A policy changed in one database leaves the other alone: b re-registered
# without its dry run.
$node->safe_psql('b', q{
SELECT finlive_register('jobs', 'runs', 'tasks', finalize_grace => '1 hour',
                        max_running => '3 hours')});
ok(defined poll_within($node, 'b', $statuses, '1:running 2:running 3:running 4:done', 30),
	'b without its dry run: job 4 is done, the rest still within b\'s grace');
is($node->safe_psql('a', $statuses), '1:done 2:running 3:queued 4:done',
	'a is unchanged');

$owner{$_}->quit for keys %owner;
$node->stop;
done_testing();
