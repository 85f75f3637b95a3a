# Fencing tokens keep increasing across server restarts.
#
# Rule (SPEC "Ownership"): tokens strictly increase over every successful
# first mark in the cluster, across server restarts too, so a token written
# into a table stays comparable later.  This holds for a clean restart and
# for a crash restart (a backend killed by SIGKILL), and when the clock has
# stepped back across the restart: tokens are issued above a high-water mark
# kept durably in $PGDATA/finlive.token (/work/notes/behaviour.md), so a
# token issued before the restart by a clock that was ahead -- here: a
# high-water mark 116 days ahead of the clock, as a clock stepped back by
# that much leaves it -- is still below every token issued after.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('tokens');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
restart_after_crash = on
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION finlive;
CREATE TABLE issued (n serial, token bigint NOT NULL);
});

# Marks job $job in a fresh session, records the token, and says whether it
# is larger than every token recorded before.  The token itself is never
# printed: its value is an implementation detail.
sub mark_and_compare
{
	my ($job) = @_;
	return $node->safe_psql(
		'postgres', qq{
WITH t AS (SELECT finlive_mark($job) AS token),
     prev AS (SELECT max(token) AS m FROM issued),
     ins AS (INSERT INTO issued (token) SELECT token FROM t RETURNING token)
SELECT (SELECT token FROM ins) > coalesce((SELECT m FROM prev), 0)
});
}

is(mark_and_compare(1), 't', 'the first token is positive');
is(mark_and_compare(2), 't', 'a later first mark gets a larger token');
is(mark_and_compare(1), 't',
	'marking a job again after its owner left gives a larger token');

# Clean restart.
$node->restart;
is(mark_and_compare(1), 't',
	'after a clean restart the token is larger than every earlier one');
is(mark_and_compare(3), 't', 'and tokens keep increasing');

# Crash restart: the server dies without writing anything at shutdown.
my $victim = $node->background_psql('postgres');
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
# A mark in flight just before the crash.
is($victim->query_safe(q{
WITH t AS (SELECT finlive_mark(4) AS token)
INSERT INTO issued (token) SELECT token FROM t RETURNING token > 0}),
	't', 'a token recorded just before the crash');
my $log_offset = log_offset($node);
kill 'KILL', $victim_pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/,
	$log_offset);
ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
	'the server is back after the crash restart');
eval { $victim->quit; };

is(mark_and_compare(4), 't',
	'after a crash restart the token is larger than every earlier one');
is(mark_and_compare(5), 't', 'and tokens keep increasing');

# The clock stepped back: the tokens issued before the restart (recorded
# here as the high-water mark minus one) came from a clock far ahead of the
# one the server has now.  Written while the server is down (clean restart)
# and while it runs, just before a crash (crash restart: shared memory is
# made again and the mark read again).
my $token_file = $node->data_dir . '/finlive.token';
sub clock_ahead
{
	my ($days) = @_;
	my $mark = $node->safe_psql('postgres', qq{
		SELECT (extract(epoch FROM now() - '2000-01-01 00:00:00+00'::timestamptz)
		        * 1000000)::bigint + ${days}::bigint * 86400 * 1000000});
	$node->safe_psql('postgres', "INSERT INTO issued (token) VALUES ($mark - 1)");
	return $mark;
}
sub write_mark
{
	my ($mark) = @_;
	open my $fh, '>', $token_file or die "cannot write $token_file: $!";
	print $fh "$mark\n";
	close $fh;
	return;
}

my $mark = clock_ahead(116);
$node->stop;
write_mark($mark);
$node->start;
is(mark_and_compare(6), 't',
	'after a clean restart with the clock 116 days behind the last token, '
	  . 'the token is still larger than every earlier one');
is(mark_and_compare(7), 't', 'and tokens keep increasing');

$mark = clock_ahead(232);
write_mark($mark);
$victim = $node->background_psql('postgres');
$victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
$log_offset = log_offset($node);
kill 'KILL', $victim_pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/,
	$log_offset);
ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
	'the server is back after another crash restart');
eval { $victim->quit; };
is(mark_and_compare(8), 't',
	'after a crash restart with the clock 232 days behind the last token, '
	  . 'the token is still larger than every earlier one');
is(mark_and_compare(9), 't', 'and tokens keep increasing');

is( $node->safe_psql(
		'postgres',
		'SELECT bool_and(token > prev) FROM
		   (SELECT token, lag(token) OVER (ORDER BY n) AS prev FROM issued) s
		  WHERE prev IS NOT NULL'),
	't',
	'every recorded token is larger than the one before it');

$node->stop;
done_testing();
