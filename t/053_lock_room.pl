# Ownership takes no lock-table room from the rest of the server.
#
# Rules (SPEC "Ownership" [1.2]; issue 10 finding 3):
#  - with finlive.max_owners jobs owned, another session can take as many
#    locks as it could with none owned: measured as the most advisory locks
#    one session can take (until 53200 "out of shared memory"), with none
#    owned and with max_owners owned, in the same server; the latter must be
#    at least what a server without finlive preloaded allows (a second
#    cluster with identical settings);
#  - when a lock cannot be had anyway (another session took every lock
#    there is), finlive_mark raises 53400 with a hint that names
#    finlive.max_owners and max_locks_per_transaction, and changes nothing:
#    no registry entry (finlive_owners, finlive_is_active, owners_active), no
#    lock; once room frees, the same mark succeeds.
#
# finlive.max_owners is 2000 here (a full registry is quick to fill) and
# max_locks_per_transaction is the default.  The measured numbers and their
# ratios are printed as notes (in the test's log), not asserted.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $max_owners = 2000;
my $settings = qq{
finlive.max_owners = $max_owners
finlive.naptime = 60000
finlive.restart_grace = 0
};

my $with = PostgreSQL::Test::Cluster->new('lock_room_finlive');
$with->init;
$with->append_conf('postgresql.conf', "shared_preload_libraries = 'finlive'\n$settings");
$with->start;

# The same settings (the finlive.* lines are mere placeholders there), and
# no finlive.
my $without = PostgreSQL::Test::Cluster->new('lock_room_plain');
$without->init;
$without->append_conf('postgresql.conf', "shared_preload_libraries = ''\n$settings");
$without->start;

my $count_sql = q{
-- the most advisory locks this session can take, then let them go
CREATE FUNCTION take_locks(base bigint, keep boolean) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;
BEGIN
    BEGIN
        LOOP
            PERFORM pg_advisory_lock(base + n);
            n := n + 1;
        END LOOP;
    EXCEPTION WHEN out_of_memory THEN    -- 53200
        NULL;
    END;
    IF NOT keep THEN
        PERFORM pg_advisory_unlock_all();
    END IF;
    RETURN n;
END $$;
};
$with->safe_psql('postgres', 'CREATE EXTENSION finlive');
$with->safe_psql('postgres', $count_sql . try_function_sql());
$without->safe_psql('postgres', $count_sql);
# (the default is 64 up to 18, 128 from 19; SHOW is what was set in both)
is( $with->safe_psql('postgres', 'SHOW max_locks_per_transaction'),
	$without->safe_psql('postgres', 'SHOW max_locks_per_transaction'),
	'both servers have the same max_locks_per_transaction, as set');
is( $with->safe_psql('postgres', q{SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings
                                   WHERE name IN ('max_connections', 'max_prepared_transactions',
                                                  'max_worker_processes', 'autovacuum_max_workers',
                                                  'max_wal_senders', 'shared_buffers')}),
	$without->safe_psql('postgres', q{SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings
                                   WHERE name IN ('max_connections', 'max_prepared_transactions',
                                                  'max_worker_processes', 'autovacuum_max_workers',
                                                  'max_wal_senders', 'shared_buffers')}),
	'and the same settings that size the lock table');

# -------------------------------------------------------------------------
# Room for the rest of the server
# -------------------------------------------------------------------------

my $none_owned = $with->safe_psql('postgres', 'SELECT take_locks(1, false)');
my $plain = $without->safe_psql('postgres', 'SELECT take_locks(1, false)');
cmp_ok($none_owned, '>', 1000, "with finlive, none owned: a session takes $none_owned locks");
cmp_ok($plain, '>', 1000, "without finlive: a session takes $plain locks");

my $owner = $with->background_psql('postgres');
is( $owner->query_safe(
		"SELECT count(finlive_mark(i)) FROM generate_series(1, $max_owners) i"),
	$max_owners, "a session owns finlive.max_owners ($max_owners) jobs");
is($with->safe_psql('postgres', 'SELECT owners_active FROM finlive_stats'), $max_owners,
	'finlive_stats counts them');
is( $with->safe_psql('postgres',
		'SELECT count(*) FROM pg_locks WHERE locktype = \'advisory\' AND objsubid = 7966 AND granted'),
	$max_owners, 'each holds its lock');
my ($st, $msg, $hint) = error_of($owner->query_safe(
	q{SELECT try_sql('SELECT finlive_mark(' || (2000000 + 1) || ')')}));
is($st, '53400', 'the registry is full: one more mark raises 53400');
like($hint, qr/finlive\.max_owners/, 'naming finlive.max_owners');

my $owned = $with->safe_psql('postgres', 'SELECT take_locks(1, false)');
cmp_ok($owned, '>=', $plain,
	"with $max_owners owned, another session still takes $owned locks, at least the $plain a server without finlive allows");
note(sprintf('lock room: none owned %d, %d owned %d (%.3f of none owned), without finlive %d (%.3f)',
		$none_owned, $max_owners, $owned, $owned / $none_owned, $plain, $owned / $plain));
diag(sprintf('lock room: owned/none-owned = %d/%d = %.3f; owned/no-finlive = %d/%d = %.3f',
		$owned, $none_owned, $owned / $none_owned, $owned, $plain, $owned / $plain));
is($owner->query_safe('SELECT finlive_clear_all()'), $max_owners, 'the owner clears its jobs');
$owner->quit;

# -------------------------------------------------------------------------
# A lock table that is really full
# -------------------------------------------------------------------------

# The marking session connects first: a new session needs no lock-table
# room, but let nothing but the mark depend on it.
my $marker = $with->background_psql('postgres');
$marker->query_safe('SELECT 1');
my $hog = $with->background_psql('postgres');
my $hogged = $hog->query_safe('SELECT take_locks(1, true)');
cmp_ok($hogged, '>', 1000, "another session takes every lock there is ($hogged) and keeps them");

my $r = $marker->query_safe(q{SELECT try_sql('SELECT finlive_mark(5000, 50, ''build'')')});
($st, $msg, $hint) = error_of($r);
is($st, '53400', 'finlive_mark raises 53400 when the lock table is full');
like($hint, qr/finlive\.max_owners/, 'the hint names finlive.max_owners');
like($hint, qr/max_locks_per_transaction/, 'and max_locks_per_transaction');
is( $marker->query_safe(q{SELECT (SELECT count(*) FROM finlive_owners WHERE job_id = 5000)
                                 || ' ' || finlive_is_active(5000)
                                 || ' ' || (SELECT owners_active FROM finlive_stats)
                                 || ' ' || (SELECT count(*) FROM pg_locks
                                             WHERE locktype = 'advisory' AND objsubid = 7966)
                                 || ' ' || (finlive_snapshot() ->> 'active')}),
	'0 false 0 0 0', 'and changes nothing: no owner, no registry entry, no lock');
is($marker->query_safe('SELECT finlive_clear(5000)'), 'f', 'there is nothing to clear');

$hog->query_safe('SELECT pg_advisory_unlock_all()');
$hog->quit;
my $token = $marker->query_safe(q{SELECT finlive_mark(5000, 50, 'build')});
like($token, qr/^\d+$/, 'once room frees, the same mark succeeds');
is( $marker->query_safe(q{SELECT string_agg(job_id || ':' || run_id || ':' || stage, ',') FROM finlive_owners}),
	'5000:50:build', 'and the owner is as marked');
is($marker->query_safe('SELECT finlive_clear(5000)'), 't', 'one clear releases it');
is( $with->safe_psql('postgres', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966}),
	'0', 'leaving no finlive lock behind');
$marker->quit;

$with->stop;
$without->stop;
done_testing();
