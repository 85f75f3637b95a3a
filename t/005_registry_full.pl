# A full ownership registry refuses new owners with a clear error.
#
# Rule (SPEC "Ownership", finlive_mark): when the registry is full,
# finlive_mark raises ERROR with SQLSTATE 53400 whose hint names
# finlive.max_owners.  The failed mark takes nothing (no lock is left
# behind); an owner can still re-mark a job it already owns; and a cleared
# slot can be used again.  The capacity is cluster-wide.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('registry_full');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.max_owners = 3
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', try_function_sql());

is($node->safe_psql('postgres', 'SHOW finlive.max_owners'),
	'3', 'the registry holds three owners');

# Two sessions fill the registry: jobs 1 and 2, then job 3.
my $sa = $node->background_psql('postgres');
my $sa_pid = $sa->query_safe('SELECT pg_backend_pid()');
is($sa->query_safe('SELECT finlive_mark(1) > 0 AND finlive_mark(2) > 0'),
	't', 'session A owns jobs 1 and 2');
my $sb = $node->background_psql('postgres');
my $sb_pid = $sb->query_safe('SELECT pg_backend_pid()');
my $token3 = $sb->query_safe('SELECT finlive_mark(3)');
ok($token3 > 0, 'session B owns job 3');

# A fourth job, from either session: 53400 with a hint naming the setting.
for my $who ([ "A", $sa ], [ "B", $sb ])
{
	my ($name, $session) = @$who;
	my ($state, $msg, $hint) =
	  error_of($session->query_safe(q{SELECT try_sql('SELECT finlive_mark(4)')}));
	is($state, '53400', "session $name: a fourth owner fails with 53400");
	like($hint, qr/finlive\.max_owners/,
		"session $name: the hint names finlive.max_owners");
}

# The failed marks left nothing behind.
is($node->safe_psql('postgres', 'SELECT finlive_is_active(4)'),
	'f', 'job 4 is not active');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks
		  WHERE locktype = 'advisory' AND pid IN ($sa_pid, $sb_pid)"),
	'3',
	'the sessions hold exactly their three locks');

# Re-marking an owned job needs no new slot.
is($sb->query_safe("SELECT finlive_mark(3, 9, 'deploy') = $token3"),
	't', 'the owner re-marks job 3 and keeps its token');

# Clearing frees a slot for anyone.
is($sa->query_safe('SELECT finlive_clear(2)'), 't', 'A clears job 2');
is($sb->query_safe('SELECT finlive_mark(4) > 0'),
	't', 'B can now mark job 4');
my ($state) =
  error_of($sa->query_safe(q{SELECT try_sql('SELECT finlive_mark(5)')}));
is($state, '53400', 'and the registry is full again');

# A session that ends frees its slots too.
$sa->quit;
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $sa_pid"),
	'session A is gone');
is($sb->query_safe('SELECT finlive_mark(5) > 0'),
	't', 'a slot freed by a departed session is usable');

$sb->quit;
$node->stop;
done_testing();
