# The worker warns when the Tier-3 ceiling is not above the Tier-2 grace.
#
# Rule (SPEC "Settings", finlive.max_running): when finlive.max_running is
# not above finlive.finalize_grace, the worker logs a WARNING at each
# configuration load -- at start and at every reload -- and none while the
# settings are sound.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('grace_ceiling');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');

my $ceiling_warning = qr/WARNING:.*finlive\.max_running/;

# Sound defaults (300 < 5400): the worker starts and ticks without warning.
ok($node->poll_query_until('postgres', 'SELECT ticks >= 3 FROM finlive_stats'),
	'the worker runs with the default settings');
is(log_count($node, $ceiling_warning), 0, 'no warning with sound settings');

# A ceiling below the grace, by reload.
my $offset = log_offset($node);
$node->safe_psql('postgres', q{
ALTER SYSTEM SET finlive.finalize_grace = 300;
ALTER SYSTEM SET finlive.max_running = 100;
SELECT pg_reload_conf();
});
my $before = $offset;
$offset = $node->wait_for_log($ceiling_warning, $offset);
pass('max_running < finalize_grace: WARNING at the reload');
my ($warning) = slurp_file($node->logfile, $before) =~
  /(WARNING:.*finlive\.max_running.*\n(?:.*(?:DETAIL|HINT):.*\n)*)/;
like($warning // '', qr/finlive\.finalize_grace/,
	'the warning (or its detail) names finalize_grace too');

# Equal is not above: warned again at the next load.
$node->safe_psql('postgres', q{
ALTER SYSTEM SET finlive.max_running = 300;
SELECT pg_reload_conf();
});
$offset = $node->wait_for_log($ceiling_warning, $offset);
pass('max_running = finalize_grace: WARNING again at the next reload');

# At start, too.
$node->restart;
$node->wait_for_log($ceiling_warning, $offset);
pass('the warning is logged when the server starts with such settings');

$node->stop;
done_testing();
