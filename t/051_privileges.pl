# Privileges and injection: a matrix of roles against every finlive function,
# hooks that run as their registrant under the worker, and search-path and
# quoting attacks.
#
# Rules (SPEC "Privileges", "Reaper targets", "The tiered reaper"):
#  - reading (finlive_is_active, _fence, _owners, _snapshot, _stats, the
#    views, finlive_reap_log, the 1.1 diagnostics) is open to PUBLIC; taking
#    and releasing ownership and administration are revoked from PUBLIC, and
#    GRANT EXECUTE is all a role needs; finlive's internal tables are not
#    writable by anyone but their owner;
#  - a role can unregister (or replace) only the targets it registered;
#  - hooks and the reaper's queries for a target run with the privileges of
#    the role that registered it, and cannot gain superuser through the
#    worker; the reaper's superuser-owned work cannot be hijacked through
#    search_path (no function or operator of another role's is ever called);
#  - table, column, function names and stage values that need quoting work.
#
# Roles: app (the orchestrator: ownership + its own targets), monitor (reads
# only), attacker (nothing granted), rogue (an administrator of its own
# targets: EXECUTE on register/unregister/reap_once, and CREATE on public, as
# in a database created before PostgreSQL 15).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my $node = PostgreSQL::Test::Cluster->new('privileges');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.database = 'postgres'
finlive.naptime = 100
finlive.restart_grace = 0
finlive.finalize_grace = 1
});
$node->start;

# Run SQL as a role (its own connection, as a real client would).
sub as_role
{
	my ($role, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role, '-v', 'ON_ERROR_STOP=1' ]);
	return wantarray ? ($out, $err) : $out;
}

# The SQLSTATE of a statement run as $role ('ok' when it succeeds).
sub state_as
{
	my ($role, $sql) = @_;
	$sql =~ s/\$q\$/\$qq\$/g;
	my $r = as_role($role, "SELECT public.try_sql(\$q\$$sql\$q\$)");
	my ($state) = error_of($r);
	return $state;
}

$node->safe_psql('postgres', q{
CREATE EXTENSION finlive;
CREATE ROLE app LOGIN;
CREATE ROLE monitor LOGIN;
CREATE ROLE attacker LOGIN;
CREATE ROLE rogue LOGIN;
GRANT CREATE ON SCHEMA public TO rogue;
GRANT CREATE ON DATABASE postgres TO rogue;
GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), finlive_clear(bigint),
      finlive_clear_all() TO app;
GRANT EXECUTE ON FUNCTION finlive_register(regclass, regclass, regclass, regprocedure,
      regprocedure, boolean), finlive_unregister(regclass), finlive_reap_once() TO app, rogue;
-- somewhere any role may write what it saw (the evidence of the attacks)
CREATE TABLE public.evidence (who text, what text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.evidence TO PUBLIC;
});
$node->safe_psql('postgres', try_function_sql());

# The application's schema and tables, with names that need quoting.
$node->safe_psql('postgres', q{
CREATE SCHEMA "app schema" AUTHORIZATION app;
SET ROLE app;
CREATE TABLE "app schema"."tasks; --" (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE "app schema"."Runs ""x""" (id bigint PRIMARY KEY, finished_at timestamptz,
    exit_code integer, "weird col'; DROP TABLE x; --" text);
CREATE TABLE "app schema"."Jobs'); DROP TABLE evidence; --" (
    id integer PRIMARY KEY, status varchar(20) NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 2,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON "app schema"."Jobs'); DROP TABLE evidence; --" (id) WHERE status = 'running';
CREATE TABLE "app schema".hook_runs (job bigint, who text, session_who text, results text);
-- The on_reap hook: records who it runs as, and tries every way up.
CREATE FUNCTION "app schema"."on reap ""hook"""(job bigint, tier integer, st text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r text := '';
    attempt text;
BEGIN
    FOREACH attempt IN ARRAY ARRAY[
        'ALTER ROLE app SUPERUSER',
        'SET ROLE postgres',
        'SET SESSION AUTHORIZATION postgres',
        'RESET ROLE',
        'SELECT pg_catalog.set_config(''role'', ''postgres'', false)',
        'COPY (SELECT 1) TO PROGRAM ''true''',
        'CREATE TEMP TABLE t_escape (a int)',
        'SELECT pg_catalog.pg_read_file(''postgresql.conf'')',
        'GRANT pg_execute_server_program TO app',
        'ALTER SYSTEM SET finlive.enabled = off',
        'SET finlive.enabled = off']
    LOOP
        BEGIN
            EXECUTE attempt;
            r := r || attempt || ' => ok; ';
        EXCEPTION WHEN OTHERS THEN
            r := r || SQLSTATE || '; ';
        END;
    END LOOP;
    INSERT INTO "app schema".hook_runs
    VALUES (job, current_user, session_user, r);
END $$;
CREATE FUNCTION "app schema"."gate ""x"""(job bigint) RETURNS boolean
LANGUAGE sql AS $$
    INSERT INTO public.evidence (who, what) VALUES (current_user, 'gate');
    SELECT true
$$;
REVOKE ALL ON FUNCTION "app schema"."on reap ""hook"""(bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION "app schema"."gate ""x"""(bigint) FROM PUBLIC;
INSERT INTO "app schema"."tasks; --" VALUES (1, 'deploy''s "stage"; --');
});

my $jobs = q{"app schema"."Jobs'); DROP TABLE evidence; --"};
my $runs = q{"app schema"."Runs ""x"""};
my $tasks = q{"app schema"."tasks; --"};
(my $jobs_lit = $jobs) =~ s/'/''/g;
(my $runs_lit = $runs) =~ s/'/''/g;
(my $tasks_lit = $tasks) =~ s/'/''/g;

# -------------------------------------------------------------------------
# 1. The matrix: every function, every role
# -------------------------------------------------------------------------

is(as_role('app', qq{SELECT finlive_register('$jobs_lit', '$runs_lit', '$tasks_lit',
	'"app schema"."on reap ""hook"""(bigint,integer,text)', '"app schema"."gate ""x"""(bigint)',
	claim_owned => true)}),
	'', 'app registers its target (quoted names everywhere)');

my $readers = 'ok';
my %calls = (
	'finlive_mark'              => [ 'SELECT finlive_mark(777)', 'write' ],
	'finlive_clear'             => [ 'SELECT finlive_clear(777)', 'write' ],
	'finlive_clear_all'         => [ 'SELECT finlive_clear_all()', 'write' ],
	'finlive_is_active'         => [ 'SELECT finlive_is_active(1)', 'read' ],
	'finlive_fence'             => [ 'SELECT finlive_fence(1, 1)', 'read' ],
	'finlive_owners()'          => [ 'SELECT * FROM finlive_owners()', 'read' ],
	'finlive_owners view'       => [ 'SELECT * FROM finlive_owners', 'read' ],
	'finlive_snapshot'          => [ 'SELECT finlive_snapshot()', 'read' ],
	'finlive_stats()'           => [ 'SELECT * FROM finlive_stats()', 'read' ],
	'finlive_stats view'        => [ 'SELECT * FROM finlive_stats', 'read' ],
	'finlive_targets view'      => [ 'SELECT * FROM finlive_targets', 'read' ],
	'finlive_reap_log select'   => [ 'SELECT * FROM finlive_reap_log', 'read' ],
	'finlive_target_problems'   => [ 'SELECT * FROM finlive_target_problems()', 'read' ],
	'finlive_running_jobs'      => [ 'SELECT * FROM finlive_running_jobs', 'read' ],
	'finlive_audit'             => [ 'SELECT * FROM finlive_audit()', 'read' ],
	'finlive_register'          => [ "SELECT finlive_register('public.evidence', 'public.evidence')", 'admin' ],
	'finlive_unregister'        => [ "SELECT finlive_unregister('public.evidence')", 'admin' ],
	'finlive_reap_once'         => [ 'SELECT * FROM finlive_reap_once()', 'admin' ],
	'finlive_stats_reset'       => [ 'SELECT finlive_stats_reset()', 'super' ],
	'finlive_target select'     => [ 'SELECT * FROM finlive_target', 'none' ],
	'finlive_target insert'     => [ "INSERT INTO finlive_target (jobs, runs, registered_by) VALUES ('public.evidence', 'public.evidence', 'postgres')", 'none' ],
	'finlive_target update'     => [ "UPDATE finlive_target SET registered_by = current_user::regrole", 'none' ],
	'finlive_target delete'     => [ 'DELETE FROM finlive_target', 'none' ],
	'finlive_reap_log insert'   => [ "INSERT INTO finlive_reap_log (target, job_id, tier, old_status, new_status, dry_run) VALUES ('public.evidence', 1, 1, 'x', 'y', false)", 'none' ],
	'finlive_reap_log update'   => [ 'UPDATE finlive_reap_log SET tier = 9', 'none' ],
	'finlive_reap_log delete'   => [ 'DELETE FROM finlive_reap_log', 'none' ],
	'finlive_reap_log truncate' => [ 'TRUNCATE finlive_reap_log', 'none' ],
	'finlive_drop_trigger'      => [ 'SELECT finlive_drop_trigger()', 'none' ],
	'SET finlive.enabled'       => [ 'SET finlive.enabled = off', 'super' ],
	'SET finlive.dry_run'       => [ 'SET finlive.dry_run = on', 'super' ],
	'SET finlive.guarded_stages' => [ "SET finlive.guarded_stages = ''", 'super' ],
	'SET finlive.max_running'   => [ 'SET finlive.max_running = 0', 'super' ],
	'SET finlive.restart_grace' => [ 'SET finlive.restart_grace = 0', 'super' ],
);
# who may do what: read is PUBLIC; write granted to app; admin to app and rogue
my %may = (
	app      => { read => 1, write => 1, admin => 1 },
	monitor  => { read => 1 },
	attacker => { read => 1 },
	rogue    => { read => 1, admin => 1 },);
for my $role (qw(app monitor attacker rogue))
{
	for my $name (sort keys %calls)
	{
		my ($sql, $class) = @{ $calls{$name} };
		my $want = $may{$role}{$class} ? 'ok' : '42501';
		# registering public.evidence is refused on its columns (42703), but
		# only after EXECUTE was granted: that is what the matrix checks
		$want = '42703' if $want eq 'ok' && $name eq 'finlive_register';
		is(state_as($role, $sql), $want, "$role: $name -> $want");
	}
}
as_role('app', 'SELECT finlive_clear_all()');

# -------------------------------------------------------------------------
# 2. Targets belong to their registrant
# -------------------------------------------------------------------------

is(state_as('rogue', "SELECT finlive_unregister('$jobs_lit')"), '42501',
	'rogue cannot unregister app\'s target');
is(state_as('rogue', "SELECT finlive_register('$jobs_lit', '$runs_lit')"), '42501',
	'rogue cannot register app\'s tables it may not update');
$node->safe_psql('postgres', qq{
GRANT USAGE ON SCHEMA "app schema" TO rogue;
GRANT SELECT, UPDATE ON $jobs, $runs, $tasks TO rogue;
});
is(state_as('rogue', "SELECT finlive_register('$jobs_lit', '$runs_lit')"), '42501',
	'even with SELECT/UPDATE on them, rogue cannot replace app\'s registration');
as_role('rogue', q{
CREATE SCHEMA rogue;
GRANT USAGE ON SCHEMA rogue TO PUBLIC;
CREATE TABLE rogue.jobs (id integer PRIMARY KEY, status text, run_id bigint, task_id bigint,
    attempts integer, max_attempts integer, started_at timestamptz);
CREATE TABLE rogue.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
});
is(state_as('rogue', q{SELECT finlive_register('rogue.jobs', 'rogue.runs',
	on_reap => '"app schema"."on reap ""hook"""(bigint,integer,text)')}), '42501',
	'rogue cannot register a hook it may not execute');
is($node->safe_psql('postgres', 'SELECT registered_by FROM finlive_targets'),
	'app', 'the target is still app\'s');
$node->safe_psql('postgres', qq{
REVOKE SELECT, UPDATE ON $jobs, $runs, $tasks FROM rogue;
REVOKE USAGE ON SCHEMA "app schema" FROM rogue;
});

# -------------------------------------------------------------------------
# 3. Search-path and overloading attacks by rogue (CREATE on public, its own
#    schema, its own search_path).  Every planted function records the role
#    it runs as; none may ever run as anyone but rogue.
# -------------------------------------------------------------------------

as_role('rogue', q{
CREATE FUNCTION rogue.note(tag text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.evidence (who, what) VALUES (current_user, tag);
    BEGIN
        EXECUTE 'ALTER ROLE rogue SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $$;
-- operators pg_catalog lacks (exact matches win over casts)
CREATE FUNCTION rogue.eq_regclass(regclass, regclass) RETURNS boolean LANGUAGE sql
    AS $$ SELECT rogue.note('=(regclass,regclass)') AND $1::oid = $2::oid $$;
CREATE OPERATOR rogue.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = rogue.eq_regclass);
CREATE FUNCTION public.mul_int_interval(integer, interval) RETURNS interval LANGUAGE sql
    AS $$ SELECT CASE WHEN rogue.note('*(integer,interval)') THEN $1::float8 * $2 END $$;
CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = public.mul_int_interval);
CREATE FUNCTION public.eq_text(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT rogue.note('=(text,text) in public') AND $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.eq_text);
-- an overload of the extension's own function, for a jobs table whose id is integer
CREATE FUNCTION public.finlive_is_active(integer) RETURNS boolean LANGUAGE sql
    AS $$ SELECT NOT rogue.note('public.finlive_is_active(integer)') $$;
-- look-alikes of what the reaper might call unqualified
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT CASE WHEN rogue.note('public.now()') THEN pg_catalog.now() END $$;
CREATE FUNCTION public.quote_ident(text) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN rogue.note('public.quote_ident()') THEN $1 END $$;
});

# rogue drives every finlive function with its planted schema first
my $rogue_path = 'SET search_path = rogue, public, pg_catalog; ';
for my $sql (
	"SELECT finlive_register('rogue.jobs', 'rogue.runs', claim_owned => true)",
	"SELECT finlive_register('rogue.jobs', 'rogue.runs', claim_owned => true)",
	'SELECT * FROM finlive_reap_once()',
	'SELECT * FROM finlive_targets',
	'SELECT * FROM finlive_target_problems()',
	'SELECT * FROM finlive_running_jobs',
	'SELECT * FROM finlive_audit()',
	"SELECT finlive_unregister('rogue.jobs')",
	"SELECT finlive_register('rogue.jobs', 'rogue.runs', claim_owned => true)")
{
	as_role('rogue', $rogue_path . $sql);
}
# app's target gets a job the worker will reap (Tier-2), and rogue's target a
# Tier-1 candidate: the worker runs the queries and hooks of both
$node->safe_psql('postgres', qq{
SET ROLE app;
INSERT INTO $runs (id, finished_at, exit_code) VALUES (1, now() - interval '1 hour', 0),
                                                   (2, NULL, NULL);
INSERT INTO $jobs (id, status, run_id, task_id, started_at)
    VALUES (1, 'running', 1, 1, now() - interval '2 hours'),
           (2, 'running', 2, 1, now() - interval '2 hours');
RESET ROLE;
INSERT INTO rogue.runs VALUES (5, NULL, NULL);
INSERT INTO rogue.jobs VALUES (5, 'running', 5, NULL, 0, 2, now() - interval '1 hour');
});
ok( $node->poll_query_until(
		'postgres', qq{SELECT string_agg(status, ',' ORDER BY id) = 'done,queued' FROM $jobs}),
	'the worker reaps app\'s jobs, Tier-2 and Tier-1 (names that need quoting)');
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'queued' FROM rogue.jobs WHERE id = 5}),
	'the worker reaps rogue\'s job');
# a few more ticks, now that finlive_reap_log has rows for the log trim
ok($node->poll_query_until('postgres',
		'SELECT ticks >= 10 FROM finlive_stats'), 'the worker keeps ticking');
my $t0 = $node->safe_psql('postgres', 'SELECT ticks FROM finlive_stats');
ok($node->poll_query_until('postgres', "SELECT ticks >= $t0 + 5 FROM finlive_stats"),
	'five more ticks');

is( $node->safe_psql(
		'postgres',
		q{SELECT coalesce(string_agg(DISTINCT who || ': ' || what, '; '), 'none')
		    FROM public.evidence WHERE who <> 'rogue' AND what <> 'gate'}),
	'none',
	'no planted function or operator ever ran as another role (superuser, app, the worker)');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'rogue'}),
	'f', 'rogue did not become superuser');

# the same unregister/register attack as in the bug report, in rogue's own schema
is(state_as('rogue', $rogue_path . "SELECT finlive_unregister('rogue.jobs')"), 'ok',
	'rogue unregisters its own target with its operator first in search_path');
is(state_as('rogue', $rogue_path . "SELECT finlive_register('rogue.jobs', 'rogue.runs')"), 'ok',
	'and registers it again');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'rogue'}),
	'f', 'rogue is still not superuser');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM public.evidence e JOIN pg_roles r ON r.rolname = e.who
		   WHERE r.rolsuper AND e.what <> 'gate'}),
	'0', 'and nothing planted ever ran as a superuser');

# -------------------------------------------------------------------------
# 4. Hooks run as their registrant, in the worker, and cannot climb
# -------------------------------------------------------------------------

is( $node->safe_psql(
		'postgres', q{SELECT string_agg(DISTINCT who, ',') || '/' || count(*) FROM "app schema".hook_runs}),
	'app/2', 'on_reap ran once per reap, as app');
my $results = $node->safe_psql('postgres', q{SELECT string_agg(results, '|') FROM "app schema".hook_runs});
unlike($results, qr/=> ok/, 'every escalation attempt inside the hook failed')
  or diag($results);
like($results, qr/^(\w{5}; ){11}\|(\w{5}; ){11}$/, 'each attempt was refused with an error') or diag($results);
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT who, ',') FROM public.evidence WHERE what = 'gate'}),
	'app', 'the gate ran as app');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app'}),
	'f', 'app is not superuser');
is($node->safe_psql('postgres', q{SHOW finlive.enabled}), 'on',
	'the hook did not switch the reaper off');
is( $node->safe_psql(
		'postgres', q{SELECT target::text || '|' || tier || '|' || new_status
		                FROM finlive_reap_log WHERE job_id = 1}),
	$jobs . '|2|done', 'the reap is logged under the quoted table name');

$node->stop;
done_testing();
