# Registrants, database owners and every other role: who the reaper's code
# runs as, and what one target can do to another.
#
# Rules (SPEC "Privileges", "[1.2] No role becomes another through
# finlive", "[1.2] Hooks see the registrant's search_path", "[1.2] Nothing a
# hook sets outlives it"):
#  1. hooks (gate, on_reap) and the triggers the reaper's update fires run as
#     the registrant, with its captured search_path, in the worker and in
#     finlive_reap_once(); nothing one target's hook sets (settings, advisory
#     locks) reaches the next target's hooks or the ticking session; a
#     session that owns jobs cannot tick (55000);
#  2. a registrant cannot make the reaper act as anyone else: it cannot
#     register a table it may not update, a hook it may not execute, a hook
#     in a temporary schema, nor another role's target; a privilege it loses
#     makes its target unusable, not reaped as someone else;
#  3. a hook that is dropped or renamed leaves its target unusable (one
#     WARNING, finlive_target_problems, finlive_audit): a function created
#     later under its name, by a role that can create in its schema or in a
#     temporary schema that a session got after the registrant's, is never
#     called, by the worker or by finlive_reap_once();
#  4. a target whose jobs table another transaction holds in ACCESS
#     EXCLUSIVE mode (idle in transaction) is skipped: another target's due
#     job is reaped within the next tick, and the worker waits for no lock;
#     finlive_explain says why, without waiting;
#  5. a hook that sleeps is cancelled at finlive.hook_timeout (the job's
#     error, 57014) and the other target is reaped, in the worker and in
#     finlive_reap_once();
#  6. the search_path check: a schema that a role the registrant does not
#     trust can create in is refused (42501, naming the role and the
#     schema); the database owner is trusted, but may not unregister or
#     replace another role's target.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;
use FinliveSecurity;

my $node = PostgreSQL::Test::Cluster->new('registrant_rules');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.finalize_grace = 1
finlive.claim_grace = 1
finlive.guarded_stages = 'deploy-staging'
});
$node->start;

my $db = 'reg';
$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE ROLE mallory LOGIN;
CREATE ROLE dbo LOGIN;
CREATE DATABASE reg OWNER dbo;
});
$node->safe_psql($db, 'CREATE EXTENSION finlive');
$node->safe_psql($db, try_function_sql());
$node->safe_psql($db, plant_log_sql('mallory'));
$node->safe_psql($db, q{
GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), finlive_clear(bigint),
    finlive_clear_all(), finlive_reap_once(), finlive_unregister(regclass),
    finlive_register(regclass, regclass, regclass, regprocedure, regprocedure, boolean,
                     interval, interval, interval, text[], boolean, boolean)
    TO app, dbo, mallory;
-- the reaper's view of a role's own tables: every piece of application
-- code records who it runs as and with which settings
CREATE TABLE public.seen (target text, job bigint, what text, who text, session_who text,
                          path text, work_mem text, advisory bigint,
                          at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.seen TO PUBLIC;
-- (no SET clause: it must see the caller's search_path; names qualified)
CREATE FUNCTION public.see(target text, job bigint, what text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO public.seen (target, job, what, who, session_who, path, work_mem, advisory)
    VALUES (target, job, what, current_user, session_user,
            pg_catalog.current_setting('search_path'), pg_catalog.current_setting('work_mem'),
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks l
              WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
                AND l.objsubid OPERATOR(pg_catalog.=) 1
                AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()))
$$;
});

# The tables of one target in schema $s (owned by $owner), with a gate, an
# on_reap hook (plus extra SQL of its own) and an UPDATE trigger, each of
# which calls public.see().
sub target_sql
{
	my ($s, $owner, $extra_on_reap) = @_;
	$extra_on_reap //= '';
	return qq{
CREATE SCHEMA $s AUTHORIZATION $owner;
SET ROLE $owner;
CREATE TABLE $s.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE $s.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 2,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON $s.jobs (id) WHERE status = 'running';
CREATE FUNCTION $s.gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN PERFORM public.see('$s', job, 'gate'); RETURN true; END \$\$;
CREATE FUNCTION $s.on_reap(job bigint, tier integer, st text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN PERFORM public.see('$s', job, 'on_reap'); $extra_on_reap END \$\$;
CREATE FUNCTION $s.trg() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN PERFORM public.see('$s', NEW.id, 'trigger'); RETURN NEW; END \$\$;
CREATE TRIGGER t BEFORE UPDATE ON $s.jobs FOR EACH ROW EXECUTE FUNCTION $s.trg();
RESET ROLE;
};
}

# Register $s as $role, with search_path $s (only $role can create there).
sub register_sql
{
	my ($s, $role, %o) = @_;
	my $hooks = $o{no_hooks} ? '' : qq{, on_reap => '$s.on_reap(bigint,integer,text)',
	                                    gate => '$s.gate(bigint)'};
	return qq{SET ROLE $role; SET search_path = $s;
SELECT public.finlive_register('$s.jobs', '$s.runs' $hooks, guarded_stages => '{}');
RESET ROLE; RESET search_path;};
}

# A due job (Tier-2: its run finished an hour ago with exit code 0).
sub due_sql
{
	my ($s, $id) = @_;
	return qq{INSERT INTO $s.runs VALUES ($id, now() - interval '1 hour', 0);
INSERT INTO $s.jobs VALUES ($id, 'running', $id, NULL, 0, 2, now() - interval '2 hours');};
}

sub status
{
	my ($s, $id) = @_;
	return $node->safe_psql($db, "SELECT status FROM $s.jobs WHERE id = $id");
}

sub ticks
{
	return $node->safe_psql($db, 'SELECT ticks FROM finlive_stats');
}

# Wait until the worker has finished $n more ticks (a tick that waited for
# a lock would never finish).
sub wait_ticks
{
	my ($n, $what) = @_;
	my $t0 = ticks();
	ok(defined poll_within($node, $db, "SELECT ticks >= $t0 + $n FROM finlive_stats", 't', 60),
		$what // "the worker finishes $n more ticks");
}

my $reaper = q{SELECT pid FROM pg_stat_activity
                WHERE backend_type = 'finlive reaper' AND datname = 'reg'};

# -------------------------------------------------------------------------
# 1. Hooks and triggers run as the registrant, with its path; nothing of
#    one target's hook reaches the next
# -------------------------------------------------------------------------

# app's target comes first in a tick (its tables are older); its on_reap
# changes settings and takes advisory locks, and the superuser's target
# after it records what its own hooks see.
$node->safe_psql($db, target_sql('a_app', 'app', q{
    PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', false);
    PERFORM pg_catalog.set_config('work_mem', '1234kB', false);
    SET work_mem = '2345kB';
    PERFORM pg_catalog.pg_advisory_lock(4242);
    PERFORM pg_catalog.pg_advisory_lock(4243);
}));
$node->safe_psql($db, target_sql('b_su', 'postgres'));
$node->safe_psql($db, register_sql('a_app', 'app') . register_sql('b_su', 'postgres'));
is( $node->safe_psql($db, q{SELECT string_agg(jobs || ' ' || registered_by || ' ' || search_path, '; '
                             ORDER BY jobs::oid) FROM finlive_targets}),
	'a_app.jobs app a_app, pg_temp; b_su.jobs postgres b_su, pg_temp',
	'each registration keeps its registrant and its captured search_path');

$node->safe_psql($db, 'BEGIN; ' . due_sql('a_app', 1) . due_sql('b_su', 2) . ' COMMIT;');
ok(defined poll_within($node, $db,
		q{SELECT (SELECT status FROM a_app.jobs WHERE id = 1) || (SELECT status FROM b_su.jobs WHERE id = 2)},
		'donedone', 60),
	'the worker reaps both targets');
is( $node->safe_psql($db, q{SELECT string_agg(format('%s %s %s', target, what, who), '; '
                             ORDER BY target, what) FROM seen}),
	'a_app gate app; a_app on_reap app; a_app trigger app; '
	  . 'b_su gate postgres; b_su on_reap postgres; b_su trigger postgres',
	'in the worker, gate, on_reap and the update trigger run as the registrant');
is( $node->safe_psql($db, q{SELECT string_agg(DISTINCT format('%s: %s', target, path), '; ')
                             FROM seen WHERE what <> 'on_reap' OR target = 'b_su'}),
	'a_app: a_app, pg_temp; b_su: b_su, pg_temp',
	'with the search_path captured at registration');
is( $node->safe_psql($db, q{SELECT string_agg(DISTINCT work_mem || '/' || advisory, ',')
                             FROM seen WHERE target = 'b_su'}),
	'4MB/0',
	'the next target\'s hooks see none of the settings or advisory locks the first hook took');
my $reaper_pid = $node->safe_psql($db, $reaper);
is( $node->safe_psql($db, "SELECT count(*) FROM pg_locks WHERE pid = $reaper_pid AND locktype = 'advisory'"),
	'0', 'the worker holds none of the advisory locks the hook took');

# finlive_reap_once(): the same, and the ticking session is unchanged.
$node->safe_psql($db, 'TRUNCATE seen');
my $tick_sql = q{
SET search_path = public, "$user";
SET work_mem = '3MB';
SET finlive.restart_grace = 0;
SELECT current_setting('search_path') || ' ' || current_setting('work_mem') || ' '
       || current_user || ' ' || (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()
                                  AND locktype = 'advisory');
BEGIN;
} . due_sql('a_app', 3) . due_sql('b_su', 4) . q{
SELECT string_agg(job_id || ':' || action, ' ' ORDER BY job_id) FROM finlive_reap_once();
COMMIT;
SELECT current_setting('search_path') || ' ' || current_setting('work_mem') || ' '
       || current_user || ' ' || (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()
                                  AND locktype = 'advisory');
};
my @out = split /\n/, $node->safe_psql($db, $tick_sql);
is($out[1], '3:done 4:done', 'finlive_reap_once reaps both targets');
is($out[2], $out[0], 'and leaves the session\'s search_path, work_mem, role and locks as they were');
is( $node->safe_psql($db, q{SELECT string_agg(format('%s %s %s %s', target, what, who, work_mem), '; '
                             ORDER BY target, what) FROM seen}),
	'a_app gate app 3MB; a_app on_reap app 3MB; a_app trigger app 3MB; '
	  . 'b_su gate postgres 3MB; b_su on_reap postgres 3MB; b_su trigger postgres 3MB',
	'in finlive_reap_once too the hooks run as their registrants, and the second target sees nothing of the first');

# A session that owns a job cannot tick: a hook could release its ownership.
my ($st, $msg) = error_of($node->safe_psql($db, q{
DO $$ BEGIN PERFORM finlive_mark(99); END $$;
SELECT try_sql('SELECT * FROM finlive_reap_once()');}));
is($st, '55000', 'a session that owns a job cannot run finlive_reap_once (55000)');
like($msg, qr/own/i, 'and the message says why');

# -------------------------------------------------------------------------
# 2. A registrant cannot make the reaper act as anyone else
# -------------------------------------------------------------------------

sub state_as
{
	my ($role, $sql) = @_;
	$sql =~ s/'/''/g;
	my $r = $node->safe_psql($db, "SET ROLE $role; SELECT public.try_sql('$sql')");
	return wantarray ? error_of($r) : (error_of($r))[0];
}

$node->safe_psql($db, target_sql('m_mal', 'mallory'));
is(state_as('mallory', q{SET search_path = m_mal; SELECT public.finlive_register('b_su.jobs', 'b_su.runs')}),
	'42501', 'mallory cannot register a table it may not update (or read)');
$node->safe_psql($db, 'GRANT USAGE ON SCHEMA b_su TO mallory; GRANT SELECT ON b_su.jobs, b_su.runs TO mallory');
is(state_as('mallory', q{SET search_path = m_mal; SELECT public.finlive_register('b_su.jobs', 'b_su.runs')}),
	'42501', 'nor one it may read but not update');
$node->safe_psql($db, 'GRANT UPDATE ON b_su.jobs TO mallory');
is(state_as('mallory', q{SET search_path = m_mal; SELECT public.finlive_register('b_su.jobs', 'b_su.runs')}),
	'42501', 'nor replace the superuser\'s registration of a table it may update');
is(state_as('mallory', q{SET search_path = m_mal; SELECT public.finlive_unregister('b_su.jobs')}),
	'42501', 'nor unregister it');
$node->safe_psql($db, 'REVOKE ALL ON b_su.jobs, b_su.runs FROM mallory; REVOKE USAGE ON SCHEMA b_su FROM mallory');
is( state_as('mallory', q{SET search_path = m_mal; SELECT public.finlive_register('m_mal.jobs', 'm_mal.runs',
	on_reap => 'b_su.on_reap(bigint,integer,text)')}),
	'42501', 'mallory cannot register the superuser\'s hook (no USAGE on its schema)');
$node->safe_psql($db, 'GRANT USAGE ON SCHEMA b_su TO mallory; REVOKE EXECUTE ON FUNCTION b_su.on_reap(bigint,integer,text) FROM PUBLIC');
is( state_as('mallory', q{SET search_path = m_mal; SELECT public.finlive_register('m_mal.jobs', 'm_mal.runs',
	on_reap => 'b_su.on_reap(bigint,integer,text)')}),
	'42501', 'nor one it may not execute');
$node->safe_psql($db, 'REVOKE USAGE ON SCHEMA b_su FROM mallory');
is( state_as('mallory', q{CREATE FUNCTION pg_temp.adv(bigint, integer, text) RETURNS void LANGUAGE sql AS 'SELECT';
	SET search_path = m_mal;
	SELECT public.finlive_register('m_mal.jobs', 'm_mal.runs', on_reap => 'pg_temp.adv(bigint,integer,text)')}),
	'42P13', 'a hook in a temporary schema is refused (42P13)');

# A registrant whose privilege goes: its target is unusable, never reaped
# as anyone else.
$node->safe_psql($db, register_sql('m_mal', 'mallory'));
$node->safe_psql($db, q{SET ROLE mallory; REVOKE UPDATE ON m_mal.jobs FROM mallory; RESET ROLE;} . due_sql('m_mal', 5));
wait_ticks(3, 'the worker ticks over a target whose registrant lost UPDATE');
is(status('m_mal', 5), 'running', 'its job is not reaped');
like( $node->safe_psql($db, q{SELECT problem FROM finlive_target_problems() WHERE target = 'm_mal.jobs'::regclass}),
	qr/mallory may not UPDATE/, 'finlive_target_problems says why');
is($node->safe_psql($db, q{SELECT count(*) FROM seen WHERE target = 'm_mal'}),
	'0', 'and none of its code ran');
$node->safe_psql($db, 'SET ROLE mallory; GRANT UPDATE ON m_mal.jobs TO mallory');
ok(defined poll_within($node, $db, 'SELECT status FROM m_mal.jobs WHERE id = 5', 'done', 60),
	'once the privilege is back, the job is reaped');
is($node->safe_psql($db, q{SELECT string_agg(DISTINCT who, ',') FROM seen WHERE target = 'm_mal'}),
	'mallory', 'as mallory');

# -------------------------------------------------------------------------
# 3. A dropped or renamed hook is never replaced
# -------------------------------------------------------------------------

# The superuser's hooks live in schema "hooks", where mallory may create
# (the hooks' schema is not in any search_path: registration allows it).
$node->safe_psql($db, q{
CREATE SCHEMA hooks;
GRANT USAGE, CREATE ON SCHEMA hooks TO mallory;
CREATE TABLE hooks.log (job bigint, what text, who text);
CREATE FUNCTION hooks.advance(job bigint, tier integer, st text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO hooks.log VALUES ($1, ''advance'', current_user)';
CREATE FUNCTION hooks.renamed(job bigint, tier integer, st text) RETURNS void LANGUAGE sql
    AS 'INSERT INTO hooks.log VALUES ($1, ''renamed'', current_user)';
CREATE FUNCTION hooks.pass(job bigint) RETURNS boolean LANGUAGE sql
    AS 'INSERT INTO hooks.log VALUES ($1, ''pass'', current_user) RETURNING true';
});
for my $s ('d_drop', 'e_ren', 'f_gate')
{
	$node->safe_psql($db, target_sql($s, 'postgres'));
}
$node->safe_psql($db, q{
SET search_path = d_drop;
SELECT public.finlive_register('d_drop.jobs', 'd_drop.runs', on_reap => 'hooks.advance(bigint,integer,text)');
SET search_path = e_ren;
SELECT public.finlive_register('e_ren.jobs', 'e_ren.runs', on_reap => 'hooks.renamed(bigint,integer,text)');
SET search_path = f_gate;
SELECT public.finlive_register('f_gate.jobs', 'f_gate.runs', gate => 'hooks.pass(bigint)');
});
my $offset = log_offset($node);
$node->safe_psql($db, q{
DROP FUNCTION hooks.advance(bigint, integer, text);
ALTER FUNCTION hooks.renamed(bigint, integer, text) RENAME TO renamed_old;
DROP FUNCTION hooks.pass(bigint);
});
# mallory's replacements, under the very names, with the real attack
$node->safe_psql($db, q{
SET ROLE mallory;
CREATE FUNCTION hooks.advance(job bigint, tier integer, st text) RETURNS void LANGUAGE sql
    AS 'SELECT plog.hit(''hooks.advance replacement'')';
CREATE FUNCTION hooks.renamed(job bigint, tier integer, st text) RETURNS void LANGUAGE sql
    AS 'SELECT plog.hit(''hooks.renamed replacement'')';
CREATE FUNCTION hooks.pass(job bigint) RETURNS boolean LANGUAGE sql
    AS 'SELECT plog.hit(''hooks.pass replacement'')';
});

# mallory's temporary schema: the one the registrant's session had.
my $s1 = $node->background_psql($db);
my $s1_temp = $s1->query_safe(
	q{CREATE TEMP TABLE probe (); SELECT pg_my_temp_schema()::regnamespace});
my ($s1_state) = error_of($s1->query_safe(q{
CREATE FUNCTION pg_temp.advance(job bigint, tier integer, st text) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT try_sql($$SET search_path = d_drop; SELECT public.finlive_register('d_drop.jobs', 'd_drop.runs',
               on_reap => 'pg_temp.advance(bigint,integer,text)')$$)}));
is($s1_state, '42P13', 'the superuser cannot register its own temporary function as a hook');
$s1->quit;
my $mal;
my $same = 0;
for my $try (1 .. 20)
{
	$mal = $node->background_psql($db, extra_params => [ '-U', 'mallory' ]);
	my $t = $mal->query_safe(q{CREATE TEMP TABLE probe (); SELECT pg_my_temp_schema()::regnamespace});
	if ($t eq $s1_temp)
	{
		$same = 1;
		last;
	}
	$mal->quit;
}
SKIP:
{
	skip "no session got the superuser's temporary schema $s1_temp", 1 unless $same;
	$mal->query_safe(q{
CREATE FUNCTION pg_temp.advance(job bigint, tier integer, st text) RETURNS void LANGUAGE sql
    AS 'SELECT plog.hit(''pg_temp.advance replacement'')';
CREATE FUNCTION pg_temp.pass(job bigint) RETURNS boolean LANGUAGE sql
    AS 'SELECT plog.hit(''pg_temp.pass replacement'')';
CREATE TEMP TABLE log (job bigint, what text, who text);});
	pass("mallory's session has $s1_temp, the superuser's former temporary schema, and plants there");
}

$node->safe_psql($db, 'BEGIN; ' . join(' ', map { due_sql($_, 10) } qw(d_drop e_ren f_gate)) . ' COMMIT;');
wait_ticks(5, 'the worker ticks over the three targets whose hook went');
is( $node->safe_psql($db, q{SELECT string_agg(status, ',') FROM (SELECT status FROM d_drop.jobs UNION ALL
        SELECT status FROM e_ren.jobs UNION ALL SELECT status FROM f_gate.jobs) s}),
	'running,running,running', 'none of their jobs is reaped');
like( $node->safe_psql($db, q{SELECT string_agg(target::text || ': ' || problem, '; ' ORDER BY target::text)
                             FROM finlive_target_problems()
                            WHERE target::text IN ('d_drop.jobs', 'e_ren.jobs', 'f_gate.jobs')}),
	qr/^d_drop\.jobs: its on_reap function hooks\.advance\(bigint,integer,(pg_catalog\.)?text\) was dropped or renamed; e_ren\.jobs: its on_reap function hooks\.renamed\(bigint,integer,(pg_catalog\.)?text\) was dropped or renamed; f_gate\.jobs: its gate function hooks\.pass\(bigint\) was dropped or renamed$/,
	'finlive_target_problems says each hook was dropped or renamed');
is( $node->safe_psql($db, q{SELECT count(*) FROM finlive_audit()
                             WHERE reason = 'broken_target'
                               AND target::text IN ('d_drop.jobs', 'e_ren.jobs', 'f_gate.jobs')}),
	'3', 'finlive_audit lists them as broken targets');
is(log_count($node, qr/^[^\n]*WARNING:  skipping target "d_drop\.jobs"/, $offset),
	1, 'one WARNING for the target, not one per tick');
my $replay = $node->safe_psql($db, q{SET finlive.restart_grace = 0;
	SELECT count(*) FROM finlive_reap_once() WHERE target::text IN ('d_drop.jobs', 'e_ren.jobs', 'f_gate.jobs')});
is($replay, '0', 'finlive_reap_once skips them too');
$mal->quit if $mal;
is($node->safe_psql($db, evidence_sql()), '0 calls; ', 'no replacement was ever called');
is($node->safe_psql($db, q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'f', 'mallory is not superuser');
is($node->safe_psql($db, 'SELECT count(*) FROM hooks.log'), '0', 'and no hook ran at all');

# Registering again is the way back: the function named then is the hook.
$node->safe_psql($db, q{
ALTER FUNCTION hooks.renamed_old(bigint, integer, text) RENAME TO renamed_back;
SET search_path = e_ren;
SELECT public.finlive_register('e_ren.jobs', 'e_ren.runs', on_reap => 'hooks.renamed_back(bigint,integer,text)');
});
ok(defined poll_within($node, $db, 'SELECT status FROM e_ren.jobs WHERE id = 10', 'done', 60),
	'registered again with a hook of its own, the target is reaped');
is($node->safe_psql($db, q{SELECT string_agg(what || ' ' || who, ',') FROM hooks.log}),
	'renamed postgres', 'by the hook registered, as the superuser');

# -------------------------------------------------------------------------
# 4. A target held locked does not hold up another
# -------------------------------------------------------------------------

$node->safe_psql($db, target_sql('g_locked', 'app') . target_sql('h_free', 'app'));
$node->safe_psql($db, register_sql('g_locked', 'app', no_hooks => 1)
	  . register_sql('h_free', 'app', no_hooks => 1));
my $holder = $node->background_psql($db, extra_params => [ '-U', 'app' ]);
# the locked target's due job becomes visible when the lock goes
$holder->query_safe('BEGIN; LOCK TABLE g_locked.jobs IN ACCESS EXCLUSIVE MODE; ' . due_sql('g_locked', 20));
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
# (the holder sits idle in its transaction from here on)
$node->safe_psql($db, due_sql('h_free', 21));
my $t0 = ticks();
ok(defined poll_within($node, $db, "SELECT ticks >= $t0 + 2 FROM finlive_stats", 't', 60),
	'the worker finishes its ticks while another transaction holds a target locked');
is(status('h_free', 21), 'done', 'the free target\'s due job was reaped by the next tick');
$reaper_pid = $node->safe_psql($db, $reaper);
is( $node->safe_psql($db, qq{SELECT count(*) FROM pg_locks WHERE pid = $reaper_pid AND NOT granted}),
	'0', 'the worker waits for no lock');
# (lock_timeout only bounds the wait that must not happen)
my ($why, $why_err) = ('', '');
$node->psql($db, q{SET lock_timeout = '5s';
	SELECT finlive_explain('g_locked.jobs', 20) ->> 'reason'}, stdout => \$why, stderr => \$why_err);
is($why_err, '', 'finlive_explain does not wait for the lock on the jobs table');
like($why, qr/locked by another transaction \(pid $holder_pid\)/,
	'and says the table is locked, and by whom');
$holder->query_safe('COMMIT');
$holder->quit;
ok(defined poll_within($node, $db, 'SELECT status FROM g_locked.jobs WHERE id = 20', 'done', 60),
	'once the lock goes, the locked target\'s job is reaped');

# -------------------------------------------------------------------------
# 5. A hook that sleeps is cut at finlive.hook_timeout
# -------------------------------------------------------------------------

$node->safe_psql($db, target_sql('i_sleep', 'app', 'PERFORM pg_catalog.pg_sleep(600);')
	  . target_sql('j_after', 'app'));
$node->safe_psql($db, register_sql('i_sleep', 'app') . register_sql('j_after', 'app'));
$node->safe_psql($db, 'ALTER SYSTEM SET finlive.hook_timeout = 1000; SELECT pg_reload_conf();');
$node->safe_psql($db, 'BEGIN; ' . due_sql('i_sleep', 30) . due_sql('j_after', 31) . ' COMMIT;');
ok(defined poll_within($node, $db, 'SELECT status FROM j_after.jobs WHERE id = 31', 'done', 60),
	'the worker reaps the target after the one whose hook sleeps');
ok( defined poll_within(
		$node, $db,
		q{SELECT sqlstate FROM finlive_reap_errors WHERE target = 'i_sleep.jobs'::regclass AND job_id = 30},
		'57014', 60),
	'the sleeping hook was cancelled: the job\'s error is 57014');
is(status('i_sleep', 30), 'running', 'and its job is left running');

# finlive_reap_once() in a session with its own hook_timeout.
my $r = $node->safe_psql($db, q{SET finlive.hook_timeout = 300; SET finlive.restart_grace = 0;
	BEGIN;} . due_sql('j_after', 32) . q{
	SELECT string_agg(target || ':' || job_id || ':' || action, ' ' ORDER BY job_id)
	  FROM finlive_reap_once() WHERE target::text IN ('i_sleep.jobs', 'j_after.jobs');
	COMMIT;});
is($r, 'j_after.jobs:32:done',
	'finlive_reap_once cuts the sleeping hook too, and reaps the other target');
$node->safe_psql($db, q{SELECT finlive_unregister('i_sleep.jobs');
	ALTER SYSTEM RESET finlive.hook_timeout; SELECT pg_reload_conf();});

# -------------------------------------------------------------------------
# 6. The search_path check, and the database owner
# -------------------------------------------------------------------------

$node->safe_psql($db, target_sql('k_app', 'app'));
is( state_as('app', q{SET search_path = k_app, public; SELECT public.finlive_register('k_app.jobs', 'k_app.runs')}),
	'ok', 'a search_path with public, where only the database owner can create, is accepted');
$node->safe_psql($db, 'GRANT CREATE ON SCHEMA public TO mallory');
my ($state, $message) = state_as('app',
	q{SET search_path = k_app, public; SELECT public.finlive_register('k_app.jobs', 'k_app.runs')});
is($state, '42501', 'once mallory may create in public, that search_path is refused');
like($message, qr/role mallory can create objects in schema "public"/,
	'naming the role and the schema');
($state, $message) = state_as('dbo',
	q{SET search_path = public; SELECT public.finlive_register('k_app.jobs', 'k_app.runs')});
is($state, '42501', 'the database owner may not replace app\'s registration');
is(state_as('dbo', q{SELECT public.finlive_unregister('k_app.jobs')}), '42501',
	'nor unregister it');
($state, $message) = state_as('postgres',
	q{SET search_path = b_su, public; SELECT public.finlive_register('b_su.jobs', 'b_su.runs')});
is($state, '42501',
	'a superuser\'s registration is refused too when mallory can create in its search_path');
like($message, qr/mallory/, 'naming mallory') if $state eq '42501';
is($node->safe_psql($db, q{SELECT search_path FROM finlive_targets WHERE jobs = 'b_su.jobs'::regclass}),
	'b_su, pg_temp', 'the superuser\'s target keeps the search_path it had');

$node->stop;
done_testing();
