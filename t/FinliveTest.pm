# Shared helpers for finlive's TAP tests (t/*.pl).
#
# Each test file builds its own PostgreSQL::Test::Cluster and writes its own
# finlive settings with append_conf; this module only holds what several
# files repeat: the application schema the reaper works on, bounded polling,
# and log inspection.  Nothing here sleeps and then asserts: every wait polls
# a condition until it holds or a deadline passes.
package FinliveTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  app_schema_sql
  poll_within
  error_of
  try_function_sql
  worker_pid_sql
  launcher_pid_sql
  finlive_processes_sql
  reaper_databases_sql
  server_timing_sql
  advance_pids_to
  log_offset
  log_count
  log_entries
  wait_for_message
  kill_client
);

# The application tables a target needs (SPEC "Reaper targets") and a helper
# add_job() that creates one running job with its run and task:
#   add_job(id, stage, exit_code, finished_ago, started_ago
#           [, attempts, max_attempts])
# A NULL exit_code leaves the run unfinished (a Tier-1 candidate); a NULL
# stage gives the job no task.
sub app_schema_sql
{
	return <<'SQL';
CREATE TABLE runs (
    id          bigint PRIMARY KEY,
    finished_at timestamptz,
    exit_code   integer
);
CREATE TABLE tasks (
    id    bigint PRIMARY KEY,
    stage text NOT NULL
);
CREATE TABLE jobs (
    id           bigint PRIMARY KEY,
    status       text NOT NULL,
    run_id       bigint,
    task_id      bigint,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 2,
    started_at   timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION add_job(p_id bigint, p_stage text, p_exit integer,
                        p_finished_ago interval, p_started_ago interval,
                        p_attempts integer DEFAULT 0,
                        p_max_attempts integer DEFAULT 2)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO runs VALUES (p_id,
        CASE WHEN p_exit IS NULL THEN NULL ELSE now() - p_finished_ago END,
        p_exit);
    IF p_stage IS NOT NULL THEN
        INSERT INTO tasks VALUES (p_id, p_stage);
    END IF;
    INSERT INTO jobs VALUES (p_id, 'running', p_id,
        CASE WHEN p_stage IS NULL THEN NULL ELSE p_id END,
        p_attempts, p_max_attempts, now() - p_started_ago);
END;
$$;
SQL
}

# SQL for a helper try_sql(query) that runs a statement and returns
# "ok" or "SQLSTATE|message|hint", so a test can check an error's code and
# wording without parsing psql's stderr.
sub try_function_sql
{
	return <<'SQL';
CREATE FUNCTION try_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; hint text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    RETURN st || '|' || msg || '|' || coalesce(hint, '');
END;
$$;
SQL
}

# Split a try_sql() result into (sqlstate, message, hint); ('ok') if none.
sub error_of
{
	my ($result) = @_;
	return ('ok', '', '') if $result eq 'ok';
	my ($state, $msg, $hint) = split /\|/, $result, 3;
	return ($state, $msg, $hint // '');
}

# finlive's background processes (SPEC "The worker", [1.3] "Every
# database"): a launcher connected to no database, and one reaper per
# database it reaps.  Each shows in pg_stat_activity under a name that says
# finlive (its backend_type or application_name); client sessions are never
# counted.
my $finlive_process = q{backend_type <> 'client backend'
	            AND (backend_type ILIKE '%finlive%'
	                 OR application_name ILIKE '%finlive%')};

# SQL for the pid of the reaper of database $dbname (no row when none runs).
sub worker_pid_sql
{
	my ($dbname) = @_;
	die "worker_pid_sql: name the database whose reaper you mean"
	  unless defined $dbname;
	$dbname =~ s/'/''/g;
	return qq{SELECT pid FROM pg_stat_activity
	          WHERE $finlive_process AND datname = '$dbname'
	          ORDER BY backend_start DESC LIMIT 1};
}

# SQL for the pid of the launcher: the finlive process with no database.
sub launcher_pid_sql
{
	return qq{SELECT pid FROM pg_stat_activity
	          WHERE $finlive_process AND datname IS NULL
	          ORDER BY backend_start DESC LIMIT 1};
}

# SQL listing every finlive process (pid, datname), launcher and reapers.
sub finlive_processes_sql
{
	return qq{SELECT pid, datname FROM pg_stat_activity WHERE $finlive_process};
}

# SQL for the databases that have a reaper now, comma separated and sorted
# ('' when none).
sub reaper_databases_sql
{
	return qq{SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '')
	            FROM pg_stat_activity
	           WHERE $finlive_process AND datname IS NOT NULL};
}

# SQL for functions that time things inside the server, so that what a
# test measures is the server's reaction, not a client's polling loop:
#   wait_until(cond text, max interval) -> double precision
#     polls the boolean query cond every 0.2 ms until it is true; returns
#     the milliseconds it took, or NULL after max.
#   terminate_and_wait(pids int[], cond text, max interval) -> double precision
#     pg_terminate_backend on each pid (not waiting), then wait_until(cond);
#     the milliseconds from just before the first termination.
#   ticks_during(d interval) -> bigint
#     how many ticks finlive_stats counted during d.
#   max_during(q text, d interval) -> bigint
#     the largest value the bigint query q gave, sampled every 10 ms for d:
#     to show that something never happened during d ("never two reapers").
# Each poll reads a fresh snapshot of the tables and of pg_stat_activity.
sub server_timing_sql
{
	return <<'SQL';
CREATE FUNCTION wait_until(cond text, max interval,
                           t0 timestamptz DEFAULT NULL)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    start timestamptz := coalesce(t0, clock_timestamp());
    ok boolean;
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE cond INTO ok;
        IF ok THEN
            RETURN extract(epoch FROM clock_timestamp() - start) * 1000;
        END IF;
        IF clock_timestamp() - start > max THEN
            RETURN NULL;
        END IF;
        PERFORM pg_sleep(0.0002);
    END LOOP;
END $$;
CREATE FUNCTION terminate_and_wait(pids int[], cond text, max interval)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    start timestamptz := clock_timestamp();
    p int;
BEGIN
    FOREACH p IN ARRAY pids LOOP
        PERFORM pg_terminate_backend(p);
    END LOOP;
    RETURN wait_until(cond, max, start);
END $$;
CREATE FUNCTION ticks_during(d interval) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE before bigint; after bigint;
BEGIN
    SELECT ticks INTO before FROM finlive_stats();
    PERFORM pg_sleep_for(d);
    SELECT ticks INTO after FROM finlive_stats();
    RETURN after - before;
END $$;
CREATE FUNCTION max_during(q text, d interval) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    stop timestamptz := clock_timestamp() + d;
    v bigint;
    m bigint;
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE q INTO v;
        m := greatest(m, v);
        EXIT WHEN clock_timestamp() > stop;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN m;
END $$;
SQL
}

# Make the kernel's next process ids come just before $target, so that a
# process started soon after gets $target itself: fork (and reap) children
# until one gets a pid at most $gap below $target.  Process ids are
# allocated in turn and wrap at pid_max (32768 on many systems), so at most
# one wrap is needed.  The forking is done by a small helper process (a
# fork of this one costs several times more).  Returns false if that did not
# happen within two wraps (another process on the machine may be taking
# pids too).
sub advance_pids_to
{
	my ($target, $gap) = @_;
	$gap //= 8;
	my $pid_max = 32768;
	if (open my $fh, '<', '/proc/sys/kernel/pid_max')
	{
		$pid_max = <$fh>;
		chomp $pid_max;
		close $fh;
	}
	my $helper = q{
		use POSIX ();
		my ($target, $gap, $pid_max) = @ARGV;
		for (1 .. 2 * $pid_max)
		{
			my $pid = fork();
			exit 2 unless defined $pid;
			POSIX::_exit(0) if $pid == 0;
			waitpid($pid, 0);
			my $below = ($target - $pid) % $pid_max;
			exit 0 if $below >= 1 && $below <= $gap;
		}
		exit 1;
	};
	return system($^X, '-e', $helper, $target, $gap, $pid_max) == 0;
}

# Poll $query on $node until it prints $expected, for at most $seconds.
# Returns the seconds it took, or undef on time-out (after a diag).
sub poll_within
{
	my ($node, $dbname, $query, $expected, $seconds) = @_;
	my $start = time();
	my $last = '';
	my $err = '';
	my $cmd = [ 'psql', '-XAtq', '-d', $node->connstr($dbname), '-c', $query ];
	local %ENV = %ENV;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	while (time() - $start < $seconds)
	{
		my ($out, $stderr) = ('', '');
		IPC::Run::run($cmd, '>', \$out, '2>', \$stderr);
		chomp $out;
		chomp $stderr;
		return time() - $start if $out eq $expected && $stderr eq '';
		($last, $err) = ($out, $stderr);
		usleep(50_000);
	}
	Test::More::diag(
		"poll_within timed out after ${seconds}s:\n$query\nexpected: $expected\n"
		  . "last output: $last\nstderr: $err");
	return undef;
}

# Current length of the server log, to look only at what comes after.
sub log_offset
{
	my ($node) = @_;
	return -s $node->logfile;
}

# The server log after $offset as a list of messages: each message is its
# first line joined with the DETAIL/HINT/CONTEXT/STATEMENT lines and the
# continuation lines that follow it, so a pattern can look at a WARNING
# together with its detail and hint.
sub log_entries
{
	my ($node, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset // 0);
	my @entries;
	for my $line (split /\n/, $log)
	{
		my $starts_message =
		  $line =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/
		  && $line !~ /\b(DETAIL|HINT|CONTEXT|STATEMENT):  /;
		if ($starts_message || !@entries)
		{
			push @entries, $line;
		}
		else
		{
			$entries[-1] .= "\n$line";
		}
	}
	return @entries;
}

# How many messages of the server log after $offset match $regex (see
# log_entries; use (?s) in $regex to let it span the detail and hint).
sub log_count
{
	my ($node, $regex, $offset) = @_;
	return scalar grep { /$regex/ } log_entries($node, $offset);
}

# Wait, for at most $seconds, until a message after $offset matches $regex.
# Returns true if one did.
sub wait_for_message
{
	my ($node, $regex, $offset, $seconds) = @_;
	my $start = time();
	while (time() - $start < $seconds)
	{
		return 1 if log_count($node, $regex, $offset) > 0;
		usleep(100_000);
	}
	Test::More::diag("no server log message matched $regex in ${seconds}s");
	return 0;
}

# SIGKILL the psql client process of a BackgroundPsql session: the server
# sees its socket close, exactly as when a client process dies.
sub kill_client
{
	my ($session) = @_;
	$session->{run}->signal('KILL');
	eval { $session->{run}->finish; };
	return;
}

1;
