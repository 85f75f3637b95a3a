# On a standby no database is reaped; after promotion every database is,
# each honouring the one restart window of the server.
#
# Rules (SPEC "The worker", [1.3] "Every database"): the reaper does nothing
# while the server is a standby and starts reaping by itself after
# promotion; every sentence about the worker holds for each reaper in its
# own database.  For finlive.restart_grace after the promotion no reap that
# depends on ownership being absent is made (Tier-1 here), while one that
# does not (an unguarded Tier-2) goes ahead -- in each database.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $restart_grace = 5;
my @dbs = qw(a b);

my $primary = PostgreSQL::Test::Cluster->new('db_primary');
$primary->init(allows_streaming => 1);
# The primary's reapers are paused: the jobs below are for the standby.
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 100
finlive.reaper = off
});
$primary->start;
for my $db (@dbs)
{
	$primary->safe_psql('postgres', "CREATE DATABASE $db");
	$primary->safe_psql($db, 'CREATE EXTENSION finlive');
	$primary->safe_psql($db, app_schema_sql());
	$primary->safe_psql($db,
		q{SELECT finlive_register('jobs', 'runs', claim_owned => true)});
}
$primary->backup('backup');

my $standby = PostgreSQL::Test::Cluster->new('db_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
finlive.reaper = on
finlive.restart_grace = $restart_grace
});
$standby->start;

# In each database, job 1: a dead worker (Tier-1, depends on ownership
# being absent); job 2: a lost finalization of an unguarded job (Tier-2).
for my $db (@dbs)
{
	$primary->safe_psql($db, q{
SELECT add_job(1, NULL, NULL, NULL, '10 minutes');
SELECT add_job(2, NULL, 0, '10 minutes', '20 minutes');
});
}
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
ok( $standby->poll_query_until(
		'postgres',
		"SELECT now() - pg_postmaster_start_time() > interval '$restart_grace s'
		        + interval '1 s'"),
	'the standby has been up for longer than restart_grace');
is($standby->safe_psql('a', 'SELECT reaped_total FROM finlive_stats'),
	'0', 'no database is reaped on a standby');
for my $db (@dbs)
{
	is( $standby->safe_psql(
			$db, 'SELECT string_agg(status, \',\' ORDER BY id) FROM jobs'),
		'running,running', "$db: both jobs are still running on the standby");
}
is(log_count($standby, qr/(ERROR|FATAL|WARNING):.*(read-only|recovery)/i), 0,
	'no reaper tries to write during recovery');

my $promoted_at = $standby->safe_psql('postgres', 'SELECT now()');
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');
ok( $standby->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'a,b'"),
	'after promotion each database has its reaper');

for my $db (@dbs)
{
	ok( $standby->poll_query_until(
			$db, q{SELECT status = 'done' FROM jobs WHERE id = 2}),
		"$db: the unguarded Tier-2 job is reaped at once");
	my $within = $standby->safe_psql($db,
		"SELECT now() < '$promoted_at'::timestamptz + interval '$restart_grace s'");
  SKIP:
	{
		skip "$db: the first reap came after restart_grace (slow machine)", 1
		  unless $within eq 't';
		is($standby->safe_psql($db, 'SELECT status FROM jobs WHERE id = 1'),
			'running', "$db: within restart_grace the Tier-1 job is left running");
	}
}
for my $db (@dbs)
{
	ok( $standby->poll_query_until(
			$db, q{SELECT status = 'queued' FROM jobs WHERE id = 1}),
		"$db: after restart_grace the Tier-1 job is requeued");
	is( $standby->safe_psql(
			$db,
			"SELECT tier = 1 AND at >= '$promoted_at'::timestamptz
			        + interval '$restart_grace s'
			   FROM finlive_reap_log WHERE job_id = 1"),
		't', "$db: no sooner than restart_grace after the promotion");
}

$standby->stop;
$primary->stop;
done_testing();
