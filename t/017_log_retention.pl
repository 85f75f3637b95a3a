# The worker deletes reap-log rows older than finlive.log_retention.
#
# Rules (SPEC "The tiered reaper", "Settings"): every reap is appended to
# finlive_reap_log; the worker deletes rows older than finlive.log_retention
# and keeps younger ones.  log_retention is a reload setting: lowering it
# takes effect without a restart.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('log_retention');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 100
finlive.log_retention = 3600
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());

# Rows of several ages: two days, two hours, ten minutes, now.
$node->safe_psql(
	'postgres', q{
INSERT INTO finlive_reap_log
    (at, target, job_id, tier, old_status, new_status, owner_pid, dry_run)
VALUES (now() - interval '2 days',   'jobs', 1, 2, 'running', 'done',   NULL, false),
       (now() - interval '2 hours',  'jobs', 2, 3, 'running', 'queued', NULL, false),
       (now() - interval '10 minutes', 'jobs', 3, 1, 'running', 'failed', NULL, true),
       (now(),                        'jobs', 4, 2, 'running', 'done',   NULL, false);
});

ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM finlive_reap_log WHERE job_id IN (1, 2)}),
	'rows older than log_retention (1 h) are deleted');
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(job_id::text, \',\' ORDER BY job_id) FROM finlive_reap_log'),
	'3,4',
	'younger rows are kept');

# Lower the retention to 5 minutes, by reload.
$node->safe_psql('postgres', q{
ALTER SYSTEM SET finlive.log_retention = 300;
SELECT pg_reload_conf();
});
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM finlive_reap_log WHERE job_id = 3}),
	'after a reload to 5 minutes the ten-minute-old row is deleted');
is( $node->safe_psql('postgres', 'SELECT job_id FROM finlive_reap_log'),
	'4', 'the fresh row is kept');

$node->stop;
done_testing();
