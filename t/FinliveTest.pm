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

# The worker's pid as pg_stat_activity shows it (its backend_type or
# application_name says finlive; client sessions are never counted).
sub worker_pid_sql
{
	return q{SELECT pid FROM pg_stat_activity
	          WHERE backend_type <> 'client backend'
	            AND (backend_type ILIKE '%finlive%'
	                 OR application_name ILIKE '%finlive%')
	          ORDER BY backend_start DESC LIMIT 1};
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
