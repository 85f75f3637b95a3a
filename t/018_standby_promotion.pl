# The worker idles on a standby and reaps after promotion, honouring
# finlive.restart_grace.
#
# Rules (SPEC "The worker", "The tiered reaper"):
#  - the worker does nothing while the server is a standby
#    (pg_is_in_recovery()), and starts reaping by itself after promotion;
#  - for finlive.restart_grace after the server started or was promoted,
#    every lock is new and owners are still reconnecting: the reaper makes no
#    reap that depends on ownership being absent (Tier-1 here), while a reap
#    that does not depend on ownership (an unguarded Tier-2) goes ahead.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $restart_grace = 4;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
# The primary's worker is paused: the jobs below are for the standby.
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 100
finlive.reaper = off
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION finlive');
$primary->safe_psql('postgres', app_schema_sql());
$primary->safe_psql('postgres',
	q{SELECT finlive_register('jobs', 'runs', claim_owned => true)});
$primary->backup('backup');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
finlive.reaper = on
finlive.restart_grace = $restart_grace
});
$standby->start;

# Job 1: a dead worker (run unfinished, claimed 10 minutes ago, no owner):
#        Tier-1, which depends on ownership being absent.
# Job 2: a lost finalization of an unguarded job: Tier-2, no ownership check.
$primary->safe_psql('postgres', q{
SELECT add_job(1, NULL, NULL, NULL, '10 minutes');
SELECT add_job(2, NULL, 0, '10 minutes', '20 minutes');
});
$primary->wait_for_catchup($standby);

# The standby: in recovery, the jobs are replicated, nothing is reaped.
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
# Stay a standby for longer than restart_grace, so that a grace measured
# only from server start would be over by the promotion.
ok( $standby->poll_query_until(
		'postgres',
		"SELECT now() - pg_postmaster_start_time() > interval '$restart_grace s'
		        + interval '1 s'"),
	'the standby has been up for longer than restart_grace');
is( $standby->safe_psql(
		'postgres',
		'SELECT reaped_total FROM finlive_stats'),
	'0',
	'the worker reaps nothing on a standby');
is( $standby->safe_psql(
		'postgres', 'SELECT string_agg(status, \',\' ORDER BY id) FROM jobs'),
	'running,running',
	'both jobs are still running on the standby');
is(log_count($standby, qr/(ERROR|FATAL|WARNING):.*(read-only|recovery)/i), 0,
	'the worker does not try to write during recovery');

# Promote.  Anything the reaper does after this point is at least
# $promoted_at; the real promotion is a little later.
my $promoted_at = $standby->safe_psql('postgres', 'SELECT now()');
$standby->promote;
ok( $standby->poll_query_until(
		'postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');

# The unguarded Tier-2 reap is allowed at once.
ok( $standby->poll_query_until(
		'postgres', q{SELECT status = 'done' FROM jobs WHERE id = 2}),
	'after promotion the worker reaps by itself');

# If that happened within the grace, the Tier-1 job must still be running.
my $within_grace = $standby->safe_psql('postgres',
	"SELECT now() < '$promoted_at'::timestamptz + interval '$restart_grace s'");
SKIP:
{
	skip 'the first reap came after restart_grace had passed (slow machine)', 1
	  unless $within_grace eq 't';
	is($standby->safe_psql('postgres', 'SELECT status FROM jobs WHERE id = 1'),
		'running', 'within restart_grace the Tier-1 job is left running');
}

# After the grace, Tier-1 reaps it (attempts 0 < 2: requeued).
ok( $standby->poll_query_until(
		'postgres', q{SELECT status = 'queued' FROM jobs WHERE id = 1}),
	'after restart_grace the Tier-1 job is requeued');
is( $standby->safe_psql(
		'postgres',
		"SELECT tier = 1 AND at >= '$promoted_at'::timestamptz
		        + interval '$restart_grace s'
		   FROM finlive_reap_log WHERE job_id = 1"),
	't',
	'the Tier-1 reap came no sooner than restart_grace after the promotion');

$standby->stop;
$primary->stop;
done_testing();
