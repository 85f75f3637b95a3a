# A dry run decides (the gate included) and logs, and changes nothing else.
#
# Rule (SPEC "The tiered reaper", "Counters"; [1.3] "A policy per target"):
# with finlive.dry_run = on -- or a target registered with dry_run => true --
# the reaper decides exactly as it would otherwise, so it still asks the
# gate how a finished run ends, but changes no job, calls no on_reap hook and
# sends no NOTIFY: it only writes finlive_reap_log rows with dry_run = true.
# A dry run reaps nothing, so the reap counters (reaped_total and per tier)
# stay where they were while the ticks go on.  When the dry run ends the
# same jobs are reaped for real, and then everything counts.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_dry_run');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.dry_run = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{
CREATE TABLE gate_calls (job_id bigint, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE hook_calls (job_id bigint, tier integer, status text);
-- The gate passes every job but 2.
CREATE FUNCTION gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gate_calls (job_id) VALUES (job);
    RETURN job <> 2;
END $$;
CREATE FUNCTION on_reap(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO hook_calls VALUES (job, tier, status) $$;
});

sub register
{
	my ($dry_run) = @_;
	$node->safe_psql('postgres', qq{
		SELECT finlive_register('jobs', 'runs', 'tasks',
		         on_reap => 'on_reap(bigint, integer, text)',
		         gate => 'gate(bigint)', claim_owned => true,
		         dry_run => $dry_run)});
	return;
}
register('NULL');

my $counters = q{SELECT format('%s %s %s %s', reaped_total, reaped_tier1,
                                reaped_tier2, reaped_tier3) FROM finlive_stats};

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN finlive_reaped');

# Job 1: a finished run the gate passes (Tier-2, done).
# Job 2: a finished run the gate fails (Tier-2, queued).
# Job 3: a claimed job whose worker is gone (Tier-1, queued).
$node->safe_psql('postgres', q{
SELECT add_job(1, 'build', 0, '10 minutes', '20 minutes');
SELECT add_job(2, 'build', 0, '10 minutes', '20 minutes');
SELECT add_job(3, 'build', NULL, NULL, '10 minutes');
});
my $decisions = q{
	SELECT string_agg(format('%s:%s:%s:%s', job_id, tier, new_status, dry_run), ' '
	                  ORDER BY job_id)
	  FROM (SELECT DISTINCT job_id, tier, new_status, dry_run FROM finlive_reap_log) l};
ok( defined poll_within(
		$node, 'postgres', $decisions, '1:2:done:t 2:2:queued:t 3:1:queued:t', 30),
	'finlive.dry_run = on: the reaper logs each decision as a dry run, the gate\'s included');
my $ticks = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'postgres', "SELECT ticks >= $ticks + 3 FROM finlive_stats"),
	'and goes on ticking');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(status, ',' ORDER BY id) FROM jobs}),
	'running,running,running', 'no job is changed');
is($node->safe_psql('postgres', $counters), '0 0 0 0',
	'the reap counters stay at zero');
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(DISTINCT job_id::text, \',\') FROM gate_calls'),
	'1,2', 'the gate is asked about each finished run');
is($node->safe_psql('postgres', 'SELECT count(*) FROM hook_calls'),
	'0', 'on_reap is never called');
is($node->safe_psql('postgres', 'SELECT errors_total FROM finlive_stats'),
	'0', 'and nothing failed');
my $notices = $listener->query_safe('SELECT 1');
unlike($notices, qr/Asynchronous notification/, 'no NOTIFY finlive_reaped is sent');

# The server setting off, the target's own dry_run on: still a dry run.
register('true');
$node->safe_psql('postgres',
	'ALTER SYSTEM SET finlive.dry_run = off; SELECT pg_reload_conf();');
ok( $node->poll_query_until(
		'postgres', q{SELECT setting = 'off' FROM pg_settings WHERE name = 'finlive.dry_run'}),
	'finlive.dry_run = off is loaded');
my $gate_calls = $node->safe_psql('postgres', 'SELECT count(*) FROM gate_calls');
$ticks = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'postgres', "SELECT ticks >= $ticks + 5 FROM finlive_stats"),
	'the reaper ticks under the target\'s own dry run');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(status, ',' ORDER BY id) FROM jobs}),
	'running,running,running', 'dry_run => true: no job is changed');
is($node->safe_psql('postgres', $counters), '0 0 0 0',
	'the reap counters still stay at zero');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM gate_calls'),
	'>', $gate_calls, 'the gate is still asked');
is($node->safe_psql('postgres', 'SELECT count(*) FROM hook_calls'),
	'0', 'on_reap is still never called');

# No dry run at all: the same decisions, for real, counted.
register('NULL');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT string_agg(status || '/' || attempts, ',' ORDER BY id) = 'done/0,queued/1,queued/1'
		    FROM jobs}),
	'without a dry run the same decisions are carried out');
is($node->safe_psql('postgres', $counters), '3 1 2 0', 'and counted');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(format('%s:%s:%s', job_id, tier, status), ' '
		                                ORDER BY job_id) FROM hook_calls}),
	'1:2:done 2:2:queued 3:1:queued', 'on_reap is called once for each');
$notices = '';
for (1 .. 100)
{
	$notices .= $listener->query_safe('SELECT 1');
	last if (() = $notices =~ /Asynchronous notification/g) >= 3;
	usleep(50_000);
}
my $sent = () = $notices =~ /Asynchronous notification "finlive_reaped"/g;
is($sent, 3, 'and a NOTIFY is sent for each');

$listener->quit;
$node->stop;
done_testing();
