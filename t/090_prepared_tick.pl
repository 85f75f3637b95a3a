# A finlive_reap_once() in a prepared transaction adds nothing to the counters.
#
# Rule (SPEC "Counters", [1.2]): only committed work counts; a
# finlive_reap_once() that runs in a transaction that is prepared and then
# rolled back adds nothing.  finlive counts a tick's work when its
# transaction commits; a prepared transaction's counts are dropped at
# PREPARE (two-phase commit would need a resource manager of finlive's own
# to carry them), so a COMMIT PREPARED adds nothing either -- the reaps
# themselves are committed, only their counting is lost.  A tick that reaps
# sends a NOTIFY, which PostgreSQL never lets a transaction prepare; so the
# ticks here only defer (and count defers, ticks and examined jobs).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('prepared_tick');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
max_prepared_transactions = 4
finlive.reaper = off
finlive.restart_grace = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
$node->safe_psql('postgres', app_schema_sql());
$node->safe_psql('postgres', q{SELECT finlive_register('jobs', 'runs', 'tasks')});

# A live finalizer owns job 1, guarded and past its grace: every tick defers it.
my $owner = $node->background_psql('postgres');
$owner->query_safe(q{SELECT finlive_mark(1, 1, 'deploy-staging')});
$node->safe_psql('postgres',
	q{SELECT add_job(1, 'deploy-staging', 0, '10 minutes', '20 minutes')});

my $counters = q{SELECT format('%s %s %s', ticks, jobs_examined, finalizer_defers_total)
                   FROM finlive_stats};

# The counting itself works: a committed tick counts.
$node->safe_psql('postgres', 'SELECT finlive_stats_reset()');
is($node->safe_psql('postgres', 'SELECT action FROM finlive_reap_once()'),
	'deferred', 'a tick defers the job to its live finalizer');
is($node->safe_psql('postgres', $counters), '1 1 1',
	'a committed tick counts its tick, its examined job and its defer');

# Prepared, then rolled back: nothing.
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT count(*) FROM finlive_reap_once();
	PREPARE TRANSACTION 'tick_rolled_back';
});
is($node->safe_psql('postgres', $counters), '1 1 1',
	'nothing counted while the tick\'s transaction is prepared');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'tick_rolled_back'});
is($node->safe_psql('postgres', $counters), '1 1 1',
	'a tick prepared and rolled back adds nothing');

# Prepared, then committed: the counts were dropped at PREPARE.
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT count(*) FROM finlive_reap_once();
	PREPARE TRANSACTION 'tick_committed';
});
$node->safe_psql('postgres', q{COMMIT PREPARED 'tick_committed'});
is($node->safe_psql('postgres', $counters), '1 1 1',
	'a prepared tick\'s counts are dropped, also when it is committed');

# A tick that reaps cannot be prepared at all (it sends a NOTIFY).
$node->safe_psql('postgres',
	q{SELECT add_job(2, 'testing', 0, '10 minutes', '20 minutes')});
my ($rc, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	SELECT count(*) FROM finlive_reap_once();
	PREPARE TRANSACTION 'tick_reaps';
});
like($err, qr/cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY/,
	'a tick that reaps cannot be prepared');
is($node->safe_psql('postgres', q{SELECT status FROM jobs WHERE id = 2}),
	'running', 'and its reap is rolled back with it');
is($node->safe_psql('postgres', $counters), '1 1 1', 'and counted nowhere');

$owner->quit;
$node->stop;
done_testing();
