# finlive warns when the Tier-3 ceiling is not above the Tier-2 grace.
#
# Rule (SPEC "Settings", finlive.max_running): when finlive.max_running is
# not above finlive.finalize_grace, finlive logs a WARNING at each
# configuration load -- at start and at every reload -- and none while the
# settings are sound.  With a reaper per database ([1.3]) that is still one
# WARNING per load, logged by the launcher, not one per reaper.
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
finlive.naptime = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql($_, 'CREATE EXTENSION finlive') for qw(postgres app);
$node->safe_psql('postgres', q{
CREATE FUNCTION ticks_still(d interval) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE before bigint; after bigint;
BEGIN
    SELECT ticks INTO before FROM finlive_stats();
    PERFORM pg_sleep_for(d);
    SELECT ticks INTO after FROM finlive_stats();
    RETURN before = after;
END $$;
});

my $ceiling_warning = qr/WARNING:.*finlive\.max_running/;

# Sound defaults (300 < 5400): the reapers start and tick without warning.
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'app,postgres'"),
	'both databases have their reaper');
ok($node->poll_query_until('postgres', 'SELECT ticks >= 6 FROM finlive_stats'),
	'the reapers run with the default settings');
is(log_count($node, $ceiling_warning), 0, 'no warning with sound settings');

# A ceiling below the grace, by reload.  The same reload pauses the reapers
# (finlive.reaper = off): once no tick comes any more, every finlive process
# has read the new settings, and has had its chance to warn.
my $offset = log_offset($node);
$node->safe_psql('postgres', q{
ALTER SYSTEM SET finlive.finalize_grace = 300;
ALTER SYSTEM SET finlive.max_running = 100;
ALTER SYSTEM SET finlive.reaper = off;
SELECT pg_reload_conf();
});
ok(wait_for_message($node, $ceiling_warning, $offset, 60),
	'max_running < finalize_grace: WARNING at the reload');
ok($node->poll_query_until('postgres', q{SELECT ticks_still('1 s')}),
	'every reaper has read the new settings');
is(log_count($node, $ceiling_warning, $offset), 1,
	'one WARNING for the reload, not one per reaper');
my ($warning) = grep { /$ceiling_warning/ } log_entries($node, $offset);
like($warning // '', qr/finlive\.finalize_grace/,
	'the warning (or its detail) names finalize_grace too');

# Equal is not above: warned again at the next load.
$offset = log_offset($node);
$node->safe_psql('postgres', q{
ALTER SYSTEM SET finlive.max_running = 300;
ALTER SYSTEM SET finlive.reaper = on;
SELECT pg_reload_conf();
});
ok(wait_for_message($node, $ceiling_warning, $offset, 60),
	'max_running = finalize_grace: WARNING again at the next reload');
my $ticks = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
ok( $node->poll_query_until(
		'postgres', "SELECT ticks >= $ticks + 6 FROM finlive_stats"),
	'the reapers tick again');
is(log_count($node, $ceiling_warning, $offset), 1,
	'again one WARNING for the reload');

# At start, too.
$offset = log_offset($node);
$node->restart;
ok(wait_for_message($node, $ceiling_warning, $offset, 60),
	'the warning is logged when the server starts with such settings');
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'app,postgres'"),
	'both reapers run after the restart');
ok($node->poll_query_until('postgres', 'SELECT ticks >= 6 FROM finlive_stats'),
	'and tick');
is(log_count($node, $ceiling_warning, $offset), 1,
	'one WARNING at start, not one per reaper start');

# Sound again: no warning at the reload.
$offset = log_offset($node);
$node->safe_psql('postgres', q{
ALTER SYSTEM SET finlive.max_running = 5400;
ALTER SYSTEM SET finlive.reaper = off;
SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', q{SELECT ticks_still('1 s')}),
	'every reaper has read the sound settings');
is(log_count($node, $ceiling_warning, $offset), 0,
	'no warning once the ceiling is above the grace again');

$node->stop;
done_testing();
