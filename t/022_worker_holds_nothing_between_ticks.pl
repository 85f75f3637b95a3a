# Between ticks the reaper holds no transaction, no row lock, no lock at all.
#
# Rule (SPEC "The worker"): it never holds a row lock or a transaction open
# between ticks.  The reaper here locks rows on every tick: job 3's run is
# past the grace, so every tick locks its row FOR UPDATE to finalize it, and
# a trigger then refuses the update (so the job stays, and the next tick
# locks it again); jobs 1 and 2 are deferred to their live finalizers.  A
# function samples the reaper many times over several ticks; a sample counts
# as "between ticks" when pg_stat_activity shows the reaper idle with the
# same state_change before and after pg_locks was read.  Every such sample
# must show no transaction (xact_start, backend_xid and backend_xmin null)
# and no lock of any type in pg_locks -- a row lock would show as the
# transactionid lock of the transaction that took it.  Finally another
# session can lock every job row with NOWAIT while the reaper is idle.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('worker_between_ticks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', server_timing_sql());
$node->safe_psql('postgres', q{
CREATE FUNCTION keep_job_3() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.id = 3 THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER keep_job_3 BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION keep_job_3();

-- (idle samples, ticks seen, what was wrong in any idle sample)
CREATE FUNCTION sample_reaper(reaper int, d interval,
                              OUT idle_samples int, OUT ticks bigint, OUT bad text)
LANGUAGE plpgsql AS $$
DECLARE
    stop timestamptz := clock_timestamp() + d;
    t0 bigint := (SELECT s.ticks FROM finlive_stats() s);
    a record;
    b record;
    locks text;
BEGIN
    idle_samples := 0;
    bad := '';
    LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT state, state_change, xact_start, backend_xid, backend_xmin
          INTO a FROM pg_stat_activity WHERE pid = reaper;
        SELECT string_agg(locktype || ' ' || mode, ', ') INTO locks
          FROM pg_locks WHERE pid = reaper;
        PERFORM pg_stat_clear_snapshot();
        SELECT state, state_change INTO b FROM pg_stat_activity WHERE pid = reaper;
        IF a.state = 'idle' AND b.state = 'idle' AND a.state_change = b.state_change THEN
            idle_samples := idle_samples + 1;
            IF a.xact_start IS NOT NULL OR a.backend_xid IS NOT NULL
               OR a.backend_xmin IS NOT NULL OR locks IS NOT NULL THEN
                bad := bad || format('[xact_start %s, xid %s, xmin %s, locks %s] ',
                                     a.xact_start, a.backend_xid, a.backend_xmin, locks);
            END IF;
        END IF;
        EXIT WHEN clock_timestamp() > stop;
        PERFORM pg_sleep(0.003);
    END LOOP;
    ticks := (SELECT s.ticks FROM finlive_stats() s) - t0;
END $$;
SELECT finlive_register('jobs', 'runs', 'tasks');
});

# Jobs 1 and 2: deferred to live finalizers.  Job 3: locked every tick.
my $owner = $node->background_psql('postgres');
$owner->query_safe(
	q{SELECT finlive_mark(1, 1, 'deploy-staging'), finlive_mark(2, 2, 'deploy-staging')});
$node->safe_psql('postgres', q{
SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes');
SELECT add_job(2, 'deploy-staging', 0, '10 minutes', '20 minutes');
SELECT add_job(3, 'build', 0, '10 minutes', '20 minutes');
});
ok( $node->poll_query_until(
		'postgres', 'SELECT finalizer_defers_total >= 4 FROM finlive_stats'),
	'the reaper ticks and defers the owned jobs');

my $reaper = $node->safe_psql('postgres', worker_pid_sql('postgres'));
my ($idle, $ticks, $bad) = split /\|/,
  $node->safe_psql('postgres', "SELECT * FROM sample_reaper($reaper, '3 s')"), 3;
$bad //= '';
cmp_ok($ticks, '>=', 5, "the reaper ticked while it was sampled ($ticks ticks)");
cmp_ok($idle, '>=', 20, "it was seen idle between ticks ($idle samples)");
is($bad, '', 'between ticks it holds no transaction and no lock');
is($node->safe_psql('postgres', 'SELECT status FROM jobs WHERE id = 3'),
	'running', 'job 3 is still there to be locked by the next tick');

# With the reaper idle, another session locks every job row without waiting.
ok( $node->poll_query_until(
		'postgres', qq{
		SELECT wait_until(\$\$SELECT state = 'idle' FROM pg_stat_activity
		                    WHERE pid = $reaper\$\$, '10 s') IS NOT NULL
		   AND (SELECT count(*) FROM (SELECT id FROM jobs FOR UPDATE NOWAIT) j) = 3}),
	'while it is idle, every job row can be locked with NOWAIT');

$owner->quit;
$node->stop;
done_testing();
