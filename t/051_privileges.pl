# Privileges and planted objects.
#
# Part 1, the planted-object matrix (SPEC "[1.2] No role becomes another
# through finlive"; issue 9 "What to build").  Whatever objects another role
# puts in any schema -- overloads of every function finlive calls or once
# called by name (finlive's own and pg_catalog's) with each other argument
# type (text, what an unknown literal prefers; integer for bigint; an extra
# defaulted argument), the very signature in an earlier schema, operators on
# every type finlive compares, tables and views named like finlive's and
# like the catalogs it reads, in a schema first in the caller's search_path
# and in pg_temp, and domains named like the types it casts to -- no finlive
# function, view, trigger or worker ever calls them, resolves to them or
# fails because of them.
#
# Four rounds: the extension in public (where the planters plant too: the
# extension's own schema) and in a schema of its own (the planters plant in
# public), each with the database owner (a non-superuser owning the
# database) and with a role granted CREATE on public as the planter.  Each
# planted object records that it ran (FinliveSecurity.pm) and tries ALTER
# ROLE ... SUPERUSER.  Then every entry point is used, as a superuser and as
# the planter, with the planter's schema first in search_path (pg_catalog
# last, explicitly) and shadows in pg_temp: every function (mark, re-mark,
# is_active, fence, owners, snapshot, stats, clear, clear_all, targets,
# target_problems, running_jobs, audit, reap_errors, explain, register under
# the hostile and under a safe search_path, with a policy, unregister, the
# drop trigger, stats_reset, reap_once over targets where it reaps one job
# and defers two), every view and the reap log; and the worker ticks over the
# same targets and reaps Tier-1, -2 and -3 jobs with hooks.  Then: no planted
# object ran (sequence, rows, log), no role gained anything, nothing failed
# (every call's SQLSTATE as expected, no WARNING in the server log), and the
# hooks ran as their registrants.
#
# Part 2, the role matrix (SPEC "Privileges"): reading is open to PUBLIC;
# taking and releasing ownership and administration are revoked from
# PUBLIC, and GRANT EXECUTE is all a role needs; finlive's internal tables
# are not writable by anyone but their owner; a role can unregister (or
# replace) only the targets it registered; hooks run as their registrant,
# in the worker, and every way up fails there; names that need quoting work.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;
use FinliveSecurity;

my $node = PostgreSQL::Test::Cluster->new('privileges');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 200
finlive.restart_grace = 0
finlive.finalize_grace = 1
finlive.claim_grace = 1
finlive.guarded_stages = 'deploy-staging'
max_worker_processes = 16
# a crash is reported by the test (see "no server process crashed"); the
# server restarts so that the rounds after it still run
restart_after_crash = on
});
$node->start;

my $super = 'postgres';    # the bootstrap superuser of the test cluster

# A query whose own names cannot be captured by what is planted.
sub sq
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, "SET search_path = pg_catalog, pg_temp; $sql");
}

$node->safe_psql('postgres', q{
CREATE ROLE dbo LOGIN;
CREATE ROLE creator LOGIN;
});

# The application tables of one registrant in schema $s, with hooks written
# plainly (unqualified names: they run with the captured search_path).
sub app_sql
{
	my ($s) = @_;
	my $sql = qq{
CREATE TABLE $s.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE $s.tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE $s.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint, task_id bigint,
    attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 2,
    started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON $s.jobs (id) WHERE status = 'running';
CREATE TABLE $s.jobs2 (LIKE $s.jobs INCLUDING ALL);
CREATE TABLE $s.hook_log (job bigint, hook text, who text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION $s.on_reap(job bigint, tier integer, st text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO hook_log (job, hook, who) VALUES (job, 'on_reap ' || tier || ' ' || st, current_user);
END \$\$;
CREATE FUNCTION $s.gate(job bigint) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO hook_log (job, hook, who) VALUES (job, 'gate', current_user);
    RETURN true;
END \$\$;
};
	$sql .= "CREATE TABLE $s.jobs3_$_ (LIKE $s.jobs INCLUDING ALL);\n" for 1 .. 4;
	return $sql;
}

# A running job: $kind 'due' (run finished long ago, exit 0: Tier-2
# finalizes it), 'guarded' (finished 10 minutes ago in the guarded stage:
# deferred while owned), 'claimed' (no exit code, started an hour ago:
# Tier-1), 'ceiling' (run never finishes, started three hours ago: Tier-3).
sub job_sql
{
	my ($s, $id, $kind) = @_;
	my %v = (
		due => [ q{'2000-01-01 00:00:00+00'}, 0, 'build', q{'2000-01-01 00:00:00+00'} ],
		guarded => [
			q{pg_catalog.now() OPERATOR(pg_catalog.-) '10 minutes'::pg_catalog.interval}, 0,
			'deploy-staging',
			q{pg_catalog.now() OPERATOR(pg_catalog.-) '20 minutes'::pg_catalog.interval}
		],
		claimed => [
			'NULL', 'NULL', 'build',
			q{pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval}
		],
		ceiling => [
			q{'infinity'}, 0, 'build',
			q{pg_catalog.now() OPERATOR(pg_catalog.-) '3 hours'::pg_catalog.interval}
		],);
	my ($fin, $exit, $stage, $start) = @{ $v{$kind} };
	return qq{
INSERT INTO $s.runs VALUES ($id, $fin, $exit);
INSERT INTO $s.tasks VALUES ($id, '$stage');
INSERT INTO $s.jobs VALUES ($id, 'running', $id, $id, 0, 2, $start);
};
}

# The calling script: every entry point, each followed by "@@ name SQLSTATE
# value".  $F: the schema of the functions called (the BEGIN ATOMIC
# wrappers, or the extension's own schema); $V: the extension's schema,
# for its views and the reap log; $own: the caller's application schema.
sub call_script
{
	my (%a) = @_;
	my ($F, $V, $own, $base, $k, $have) = @a{qw(F V own base k have)};
	my $j1 = $base + 90 + $k;
	my $j2 = $base + 95 + $k;
	my $due = $base + 50 + $k;
	my $guarded = $base + 1;
	my $i8 = '::pg_catalog.int8';
	my $policy = $have->{policy}
	  ? q{, '1 second'::pg_catalog.interval, NULL, '1 hour'::pg_catalog.interval,
	     ARRAY['deploy-staging']::pg_catalog.text[], true, false}
	  : '';
	my @steps = (
		[ mark => "SELECT $F.finlive_mark($j1$i8, 1$i8, 'build'::pg_catalog.text) AS v" ],
		[ remark => "SELECT $F.finlive_mark($j1$i8, 2$i8, 'build 2'::pg_catalog.text) AS v" ],
		[ is_active => "SELECT $F.finlive_is_active($j1$i8) AS v" ],
		[   fence => "SELECT $F.finlive_fence($j1$i8, (SELECT o.token FROM $F.finlive_owners() o
		             WHERE o.job_id OPERATOR(pg_catalog.=) $j1$i8)) AS v"
		],
		[ owners_fn => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_owners()" ],
		[ owners_view => "SELECT pg_catalog.count(*) AS v FROM $V.finlive_owners" ],
		[ snapshot => "SELECT $F.finlive_snapshot() IS NOT NULL AS v" ],
		[ stats_fn => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_stats()" ],
		[ stats_view => "SELECT pg_catalog.count(*) AS v FROM $V.finlive_stats" ],
		[ clear => "SELECT $F.finlive_clear($j1$i8) AS v" ],
		[ mark2 => "SELECT $F.finlive_mark($j2$i8) IS NOT NULL AS v" ],
		[ clear_all => "SELECT $F.finlive_clear_all() AS v" ],
		[ targets_fn => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_targets()" ],
		[ targets_view => "SELECT pg_catalog.count(*) AS v FROM $V.finlive_targets" ],
		[ target_problems => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_target_problems()" ],
		[ running_jobs_fn => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_running_jobs()" ],
		[ running_jobs_view => "SELECT pg_catalog.count(*) AS v FROM $V.finlive_running_jobs" ],
		[ audit => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_audit()" ],
		[ reap_errors_fn => "SELECT pg_catalog.count(*) AS v FROM $F.finlive_reap_errors()", 'finlive_reap_errors' ],
		[ reap_errors_view => "SELECT pg_catalog.count(*) AS v FROM $V.finlive_reap_errors", 'finlive_reap_errors' ],
		[ reap_log => "SELECT pg_catalog.count(*) AS v FROM $V.finlive_reap_log" ],
		[   explain => "SELECT $F.finlive_explain('$own.jobs'::pg_catalog.regclass, $guarded$i8)
		               OPERATOR(pg_catalog.->>) 'action' AS v", 'finlive_explain'
		],
		[   register_hostile_path =>
			  "SELECT pg_catalog.count(*) AS v FROM (SELECT $F.finlive_register('$own.jobs2'::pg_catalog.regclass,
			   '$own.runs'::pg_catalog.regclass)) x"
		],
		[ set_safe_path => "SET search_path = $own" ],
		[   register => "SELECT pg_catalog.count(*) AS v FROM (SELECT $F.finlive_register(
			   '$own.jobs2'::pg_catalog.regclass, '$own.runs'::pg_catalog.regclass, '$own.tasks'::pg_catalog.regclass,
			   '$own.on_reap(pg_catalog.int8, pg_catalog.int4, pg_catalog.text)'::pg_catalog.regprocedure,
			   '$own.gate(pg_catalog.int8)'::pg_catalog.regprocedure, false $policy)) x"
		],
		[ unregister => "SELECT $F.finlive_unregister('$own.jobs2'::pg_catalog.regclass) AS v" ],
		[   register_then_drop => "SELECT pg_catalog.count(*) AS v FROM (SELECT $F.finlive_register(
			   '$own.jobs3_$k'::pg_catalog.regclass, '$own.runs'::pg_catalog.regclass)) x"
		],
		[ drop_trigger => "DROP TABLE $own.jobs3_$k" ],
		[ set_hostile_path => 'SET search_path = plant, public, pg_catalog' ],
		[ stats_reset => "SELECT pg_catalog.count(*) AS v FROM (SELECT $F.finlive_stats_reset()) x" ],
		[ begin => 'BEGIN' ],
		[   insert_due => "INSERT INTO $own.runs VALUES ($due, '2000-01-01 00:00:00+00', 0);
			 INSERT INTO $own.tasks VALUES ($due, 'build');
			 INSERT INTO $own.jobs VALUES ($due, 'running', $due, $due, 0, 2, '2000-01-01 00:00:00+00')"
		],
		[   reap_once => "SELECT pg_catalog.string_agg(r.job_id::pg_catalog.text OPERATOR(pg_catalog.||) ':'
			   OPERATOR(pg_catalog.||) r.tier::pg_catalog.text OPERATOR(pg_catalog.||) ':'
			   OPERATOR(pg_catalog.||) r.action, ' ' ORDER BY r.job_id) AS v FROM $F.finlive_reap_once() r"
		],
		[ commit => 'COMMIT' ],
		[   reaped_status => "SELECT j.status AS v FROM $own.jobs j
			   WHERE j.id OPERATOR(pg_catalog.=) $due$i8"
		],);

	my $script = qq{\\set ON_ERROR_STOP 0
\\set VERBOSITY terse
SET search_path = plant, public, pg_catalog;
} . temp_shadows_sql() . qq{
\\echo @@ temp_shadows :SQLSTATE
};
	for my $step (@steps)
	{
		my ($name, $sql, $needs) = @$step;
		if (defined $needs && !$have->{$needs})
		{
			$script .= "\\echo @@ $name SKIP0\n";
			next;
		}
		if ($sql =~ /\bAS v\b/)
		{
			$script .= "\\unset v\n$sql \\gset\n\\echo @@ $name :SQLSTATE :v\n";
		}
		else
		{
			$script .= "$sql;\n\\echo @@ $name :SQLSTATE\n";
		}
	}
	return ($script, $due, $guarded);
}

my @rounds = (
	{ db => 'plant_public_dbo',     ext => 'public',  planter => 'dbo' },
	{ db => 'plant_public_creator', ext => 'public',  planter => 'creator' },
	{ db => 'plant_own_dbo',        ext => 'finlive', planter => 'dbo' },
	{ db => 'plant_own_creator',    ext => 'finlive', planter => 'creator' },
	# a role granted CREATE on the extension's own schema plants there too
	{ db => 'plant_in_ext_schema',  ext => 'finlive', planter => 'creator', in_ext => 1 },);

for my $round (@rounds)
{
	my ($db, $ext, $p) = @{$round}{qw(db ext planter)};
	my $offset = log_offset($node);

	$node->safe_psql('postgres', "CREATE DATABASE $db OWNER dbo");
	$node->safe_psql($db,
		$ext eq 'public'
		? 'CREATE EXTENSION finlive'
		: 'CREATE SCHEMA finlive; GRANT USAGE ON SCHEMA finlive TO PUBLIC;
		   CREATE EXTENSION finlive SCHEMA finlive');
	$node->safe_psql($db, wrappers_sql());
	my %have = map { (split /\|/)[1] => 1 } split /\n/, $node->safe_psql($db, ext_functions_sql());
	$have{policy} = $node->safe_psql($db,
		"SELECT pronargs FROM pg_proc WHERE oid = to_regproc('$ext.finlive_register')") == 12;
	$node->safe_psql($db, "GRANT CREATE ON SCHEMA public TO creator") if $p eq 'creator';
	$node->safe_psql($db, "GRANT CREATE ON SCHEMA $ext TO creator") if $round->{in_ext};
	$node->safe_psql($db, qq{
CREATE SCHEMA su_app;
CREATE SCHEMA p_app AUTHORIZATION $p;
CREATE SCHEMA plant AUTHORIZATION $p;
GRANT USAGE ON SCHEMA plant TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA $ext TO $p;
} . plant_log_sql($p) . app_sql('su_app') . "SET ROLE $p;\n" . app_sql('p_app'));

	# Both targets registered before anything is planted, each with a
	# search_path that only its registrant can create in.
	my $pol = $have{policy} ? ", finalize_grace => '1 second'" : '';
	$node->safe_psql($db, qq{
SET search_path = su_app;
SELECT $ext.finlive_register('su_app.jobs', 'su_app.runs', 'su_app.tasks',
    'su_app.on_reap(bigint,integer,text)', 'su_app.gate(bigint)', claim_owned => true $pol);
SET ROLE $p;
SET search_path = p_app;
SELECT $ext.finlive_register('p_app.jobs', 'p_app.runs', 'p_app.tasks',
    'p_app.on_reap(bigint,integer,text)', 'p_app.gate(bigint)', claim_owned => true $pol);
});

	# A finalizer owns one guarded job of each target (marked before the
	# jobs exist, so that the worker never sees them unowned).
	my $owner = $node->background_psql($db);
	$owner->query_safe("SELECT $ext.finlive_mark(101, 101, 'deploy-staging'),
	                           $ext.finlive_mark(201, 201, 'deploy-staging')");
	sq($db, job_sql('su_app', 101, 'guarded') . job_sql('p_app', 201, 'guarded'));

	my $roles_before = sq('postgres', role_snapshot_sql());

	# Plant.
	my $schemas = $round->{in_ext} ? [ 'public', $ext, 'plant' ] : [ 'public', 'plant' ];
	my ($pout, $perr) = run_script($node, $db, $p,
		plant_sql(schemas => $schemas, shadow_schema => 'plant', ext_schema => $ext));
	is($perr, '', "$db: $p plants without an error");
	my $planted = sq($db, 'SELECT count(*) FROM plog.planted');
	cmp_ok($planted, '>', 500, "$db: $p planted $planted objects");
	my @brief = (
		'function public.finlive_is_active(text)',
		'function public.finlive_is_active(bigint, integer DEFAULT 0)',
		'function public.finlive_owners(integer DEFAULT 0, OUT job_id bigint%',
		'function public.finlive_targets(integer DEFAULT 0, OUT jobs regclass%',
		'function public.to_regprocedure(text, integer DEFAULT 0)',
		'function public.current_setting(text, integer DEFAULT 0)',
		'function public.format(text, integer DEFAULT 0)',
		'function plant.now()',
		'operator public.=(bigint, bigint)',
		'operator public.=(regclass, regclass)',
		'operator public.<=(timestamp with time zone, timestamp with time zone)',
		'operator public.+(integer, integer)',
		'table plant.finlive_target',
		'view plant.finlive_targets',
		'view plant.pg_stat_activity',
		'domain plant.text');
	is( sq($db, 'SELECT count(*) FROM unnest(ARRAY['
			  . join(', ', map { "'$_'" } @brief)
			  . ']) b WHERE EXISTS (SELECT 1 FROM plog.planted WHERE what LIKE b)'),
		scalar(@brief),
		"$db: among them the overloads, operators, shadows and domains of the brief");
	is( sq($db, q{SELECT count(*) FROM plog.planted
	               WHERE what IN ('function finlive.finlive_is_active(text)',
	                              'function finlive.finlive_is_active(bigint, integer DEFAULT 0)',
	                              'operator finlive.=(bigint, bigint)')}),
		'3', "$db: and in the extension's own schema, next to its functions")
	  if $round->{in_ext};
	is(sq($db, evidence_sql()), '0 calls; ', "$db: planting ran nothing planted");

	# Every entry point, as a superuser and as the planter; through the
	# wrappers, and where the extension has its own schema also directly.
	# (where the planter can create in the extension's schema, a direct call
	# of a function there can be made ambiguous by PostgreSQL's own rules:
	# only the wrappers, bound before the planting, are used)
	my @prefixes = ($ext eq 'public' || $round->{in_ext}) ? ('calls') : ('calls', $ext);
	my $k = 0;
	my $errors_expected = 0;
	for my $caller ($super, $p)
	{
		my $own = $caller eq $super ? 'su_app' : 'p_app';
		my $base = $caller eq $super ? 100 : 200;
		for my $F (@prefixes)
		{
			$k++;
			my ($script, $due, $guarded) = call_script(
				F => $F, V => $ext, own => $own, base => $base, k => $k, have => \%have);
			my ($out, $err) = run_script($node, $db, $caller, $script);
			my $r = parse_results($out);
			my $who = "$db: $caller via $F";
			my %want = map { $_ => '00000' } qw(temp_shadows mark remark is_active fence
			  owners_fn owners_view snapshot stats_fn stats_view clear mark2 clear_all
			  targets_fn targets_view target_problems running_jobs_fn running_jobs_view audit
			  reap_errors_fn reap_errors_view reap_log explain register_hostile_path
			  set_safe_path register unregister register_then_drop drop_trigger
			  set_hostile_path stats_reset begin insert_due reap_once commit reaped_status);
			# Registration refuses a search_path with a schema that a role the
			# registrant does not trust can create in (the planter's schema,
			# for a superuser, unless the planter owns the database).
			$want{register_hostile_path} = '42501'
			  if $caller eq $super && $p ne 'dbo';
			$errors_expected++ if $want{register_hostile_path} ne '00000';
			for my $name (sort keys %want)
			{
				my $got = $r->{$name} ? $r->{$name}[0] : 'missing';
				$got = '00000' if $got eq 'SKIP0';
				is($got, $want{$name}, "$who: $name -> $want{$name}")
				  or diag("stderr:\n$err");
			}
			my %v = map { $_ => ($r->{$_} ? $r->{$_}[1] : '') } keys %$r;
			like($v{mark}, qr/^\d+$/, "$who: mark returns a token");
			is($v{remark}, $v{mark}, "$who: marking again returns the same token");
			is("$v{is_active} $v{fence} $v{clear} $v{clear_all}", 't t t 1',
				"$who: is_active, fence, clear and clear_all answer right");
			is($v{explain}, 'deferred', "$who: explain says the guarded job is deferred")
			  if $have{finlive_explain};
			is($v{unregister}, 't', "$who: unregister removes the target");
			my @rows = sort { (split /:/, $a)[0] <=> (split /:/, $b)[0] }
			  ('101:2:deferred', '201:2:deferred', "$due:2:done");
			is($v{reap_once}, join(' ', @rows),
				"$who: reap_once reaps the due job and defers both owned ones");
			is($v{reaped_status}, 'done', "$who: and the job is done");
			unlike($err, qr/PLANTED RAN/, "$who: no planted object ran in the session");
		}
	}

	# The worker: Tier-2 with the gate, Tier-1 and Tier-3 on both targets.
	sq($db, join('', map {
		my ($s, $b) = @$_;
		job_sql($s, $b + 60, 'due') . job_sql($s, $b + 61, 'claimed')
		  . job_sql($s, $b + 62, 'ceiling')
	} ([ 'su_app', 100 ], [ 'p_app', 200 ])));
	for my $s ('su_app', 'p_app')
	{
		my $b = $s eq 'su_app' ? 100 : 200;
		ok( defined poll_within(
				$node, $db,
				"SET search_path = pg_catalog; SELECT string_agg(status, ',' ORDER BY id)
				   FROM $s.jobs WHERE id IN ($b + 1, $b + 60, $b + 61, $b + 62)",
				'running,done,queued,queued', 60),
			"$db: the worker reaps $s: Tier-2 done, Tier-1 and Tier-3 queued; the owned job stays");
	}
	my $ticks = sq($db, "SELECT ticks FROM $ext.finlive_stats");
	ok( defined poll_within(
			$node, $db,
			"SET search_path = pg_catalog; SELECT ticks >= $ticks + 3 FROM $ext.finlive_stats",
			't', 60),
		"$db: the worker goes on ticking");

	# The verdict.
	is(sq($db, evidence_sql()), '0 calls; ', "$db: no planted object ever ran");
	is(log_count($node, qr/^[^\n]*WARNING:  PLANTED RAN/, $offset), 0, "$db: the server log agrees");
	is(sq('postgres', role_snapshot_sql()), $roles_before,
		"$db: no role gained an attribute or a membership");
	is(log_count($node, qr/^[^\n]*WARNING:  /, $offset), 0, "$db: no WARNING in the server log")
	  or diag(join("\n", grep { /^[^\n]*WARNING:  / } log_entries($node, $offset)));
	is(log_count($node, qr/^[^\n]*(ERROR|FATAL|PANIC):  /, $offset), $errors_expected,
		"$db: no ERROR in the server log but the refused registrations")
	  or diag(join("\n", grep { /^[^\n]*(ERROR|FATAL|PANIC):  / } log_entries($node, $offset)));
	is( sq($db, q{SELECT string_agg(DISTINCT who, ',') FROM su_app.hook_log}),
		$super, "$db: the superuser's hooks ran as the superuser");
	is(sq($db, q{SELECT string_agg(DISTINCT who, ',') FROM p_app.hook_log}),
		$p, "$db: the planter's hooks ran as the planter");
	is( sq($db, q{SELECT count(*) FILTER (WHERE hook LIKE 'on_reap%') || '/'
	                     || count(*) FILTER (WHERE hook = 'gate') FROM su_app.hook_log}),
		(scalar(@prefixes) + 3) . '/' . (scalar(@prefixes) + 1),
		"$db: on_reap ran once per reap of the superuser's target, the gate once per finalization");

	$owner->quit;
	# (a crash of the launcher at this moment also kills the DROP: try again
	# once the server is back; the crash itself fails the next test)
	for my $try (1 .. 3)
	{
		last if $node->psql('postgres', "DROP DATABASE IF EXISTS $db WITH (FORCE)") == 0;
		$node->poll_query_until('postgres', 'SELECT true');
	}
	ok( defined poll_within(
			$node, 'postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE datname = '$db'", '0', 60),
		"$db: dropped, and its reaper is gone");
	is(log_count($node, qr/terminated by signal/, $offset), 0, "$db: no server process crashed")
	  or diag(join("\n", grep { /terminated by signal/ } log_entries($node, $offset)));
	$node->poll_query_until('postgres', 'SELECT true');
}

# -------------------------------------------------------------------------
# Part 2: the role matrix
# -------------------------------------------------------------------------

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

my $register_sig = 'finlive_register(regclass, regclass, regclass, regprocedure,
      regprocedure, boolean, interval, interval, interval, text[], boolean, boolean)';
$node->safe_psql('postgres', qq{
CREATE EXTENSION finlive;
CREATE ROLE app LOGIN;
CREATE ROLE monitor LOGIN;
CREATE ROLE attacker LOGIN;
CREATE ROLE rogue LOGIN;
GRANT CREATE ON SCHEMA public TO rogue;
GRANT CREATE ON DATABASE postgres TO rogue;
GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), finlive_clear(bigint),
      finlive_clear_all() TO app;
GRANT EXECUTE ON FUNCTION $register_sig, finlive_unregister(regclass), finlive_reap_once() TO app, rogue;
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

is( state_as('app', qq{SET search_path = "app schema";
	SELECT public.finlive_register('$jobs_lit', '$runs_lit', '$tasks_lit',
	'"app schema"."on reap ""hook"""(bigint,integer,text)', '"app schema"."gate ""x"""(bigint)',
	claim_owned => true)}),
	'ok', 'app registers its target (quoted names everywhere)');

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
	'finlive_reap_errors view'  => [ 'SELECT * FROM finlive_reap_errors', 'read' ],
	'finlive_target_problems'   => [ 'SELECT * FROM finlive_target_problems()', 'read' ],
	'finlive_running_jobs'      => [ 'SELECT * FROM finlive_running_jobs', 'read' ],
	'finlive_audit'             => [ 'SELECT * FROM finlive_audit()', 'read' ],
	'finlive_explain (no target)' => [ "SELECT finlive_explain('public.evidence', 1)", 'read' ],
	'finlive_register'          => [ "SELECT finlive_register('public.evidence', 'public.evidence')", 'admin' ],
	'finlive_unregister'        => [ "SELECT finlive_unregister('public.evidence')", 'admin' ],
	'finlive_reap_once'         => [ 'SELECT * FROM finlive_reap_once()', 'admin' ],
	'finlive_stats_reset'       => [ 'SELECT finlive_stats_reset()', 'super' ],
	'finlive_target select'     => [ 'SELECT * FROM finlive_target', 'none' ],
	'finlive_target insert'     => [ "INSERT INTO finlive_target (jobs, runs, registered_by, search_path) VALUES ('public.evidence', 'public.evidence', 'postgres', 'public')", 'none' ],
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
	'SET finlive.hook_timeout'  => [ 'SET finlive.hook_timeout = 0', 'super' ],
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

# Explain follows the jobs table's privileges.
is(state_as('monitor', "SELECT finlive_explain('$jobs_lit', 1)"), '42501',
	'monitor may not explain a job of a table it may not read');
is(state_as('app', "SELECT finlive_explain('$jobs_lit', 1)"), 'ok',
	'app may explain its own job');

# Targets belong to their registrant.
is(state_as('rogue', "SELECT finlive_unregister('$jobs_lit')"), '42501',
	'rogue cannot unregister app\'s target');
is(state_as('rogue', "SELECT finlive_register('$jobs_lit', '$runs_lit')"), '42501',
	'rogue cannot register app\'s tables it may not update');
$node->safe_psql('postgres', qq{
GRANT USAGE ON SCHEMA "app schema" TO rogue;
GRANT SELECT, UPDATE ON $jobs, $runs, $tasks TO rogue;
});
is( state_as('rogue', qq{SET search_path = pg_catalog; SELECT public.finlive_register('$jobs_lit', '$runs_lit')}),
	'42501', 'even with SELECT/UPDATE on them, rogue cannot replace app\'s registration');
as_role('rogue', q{
CREATE SCHEMA rogue;
GRANT USAGE ON SCHEMA rogue TO PUBLIC;
CREATE TABLE rogue.jobs (id integer PRIMARY KEY, status text, run_id bigint, task_id bigint,
    attempts integer, max_attempts integer, started_at timestamptz);
CREATE TABLE rogue.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
});
is( state_as('rogue', q{SET search_path = rogue; SELECT public.finlive_register('rogue.jobs', 'rogue.runs',
	on_reap => '"app schema"."on reap ""hook"""(bigint,integer,text)')}), '42501',
	'rogue cannot register a hook it may not execute');
is($node->safe_psql('postgres', 'SELECT registered_by FROM finlive_targets'),
	'app', 'the target is still app\'s');
$node->safe_psql('postgres', qq{
REVOKE SELECT, UPDATE ON $jobs, $runs, $tasks FROM rogue;
REVOKE USAGE ON SCHEMA "app schema" FROM rogue;
});
is(state_as('rogue', q{SET search_path = rogue; SELECT public.finlive_register('rogue.jobs', 'rogue.runs', claim_owned => true)}),
	'ok', 'rogue registers its own table');

# Hooks run as their registrant, in the worker, and cannot climb.
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
