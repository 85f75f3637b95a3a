# The README's quick start works as pasted.
#
# Rule (issue 13, "Done when"): the quick start goes, as pasted into psql,
# from an empty server to a job reaped after its owner's session is killed,
# and a test runs the README's quick-start blocks exactly as they appear.
#
# How the blocks are found: every ```sql fenced block between the heading
# "## Quick start" and the next "## " heading of README.md is a step, in
# document order.  Its first line names the psql session it is pasted into:
# "-- Terminal 1" or "-- Terminal 2".  A ```sql block there without that
# line fails the test (so no step can be dropped silently); blocks of any
# other language (```text outputs, say) are not run.
#
# How they are run: two psql processes, started the way the README says
# (psql as a superuser, here connected to the server's "postgres"
# database), are fed each block's text unchanged on their standard input,
# as a paste would; between blocks the test only waits for psql to have
# executed the block (an \echo marker after it).  psql runs with
# ON_ERROR_STOP, so a block that errors stops its session and fails the
# test.  The server is a fresh cluster whose only setting is
# shared_preload_libraries = 'finlive' (the rest is PostgreSQL::Test's
# plumbing: port, socket, logging).
#
# What is checked: every block runs without error; job 42 of database orch
# is deferred while its owner lives (a reader of the README pauses between
# the blocks; the test pauses before the block that kills the owner until
# finlive_explain says "deferred" and the restart window of the fresh
# server has closed, which is what the README's text says to expect); then,
# after the remaining blocks, the job ends reaped (done, by Tier-2, one
# finlive_reap_log row) and the fenced UPDATE with the dead owner's token
# updates nothing.
#
# FINLIVE_QUICKSTART_README=path runs the blocks of another file (to show
# that a broken block fails the test).  The test takes about a minute: the
# restart window (finlive.restart_grace, 60 s) of a fresh server.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $readme = $ENV{FINLIVE_QUICKSTART_README} // "$FindBin::RealBin/../README.md";
my $db = 'orch';    # the README's database and job
my $job = 42;

# ---- the blocks ----------------------------------------------------------
open my $fh, '<', $readme or BAIL_OUT("cannot read $readme: $!");
my @lines = <$fh>;
close $fh;

my @blocks;           # { terminal => 1|2, text => ..., line => n }
my ($in_section, $fence, $block, $start) = (0, undef, undef, 0);
for my $i (0 .. $#lines)
{
	my $l = $lines[$i];
	if (!defined $fence)
	{
		if ($l =~ /^## /)
		{
			$in_section = ($l =~ /^## Quick start\s*$/) ? 1 : 0;
			next;
		}
		next unless $in_section;
		if ($l =~ /^(```+)\s*(\S*)\s*$/)
		{
			$fence = $1;
			$block = (lc($2) eq 'sql') ? '' : undef;
			$start = $i + 2;
		}
		next;
	}
	if ($l =~ /^\Q$fence\E\s*$/)
	{
		if (defined $block)
		{
			my ($first) = split /\n/, $block, 2;
			if (defined $first && $first =~ /^--\s*Terminal\s+([12])\b/)
			{
				push @blocks, { terminal => $1, text => $block, line => $start };
			}
			else
			{
				fail("the sql block at $readme line $start names its terminal "
					  . "('-- Terminal 1' or '-- Terminal 2' as its first line)");
			}
		}
		($fence, $block) = (undef, undef);
		next;
	}
	$block .= $l if defined $block;
}
ok(scalar(grep { $_->{terminal} == 1 } @blocks) > 0
	  && scalar(grep { $_->{terminal} == 2 } @blocks) > 0,
	'the quick start has sql blocks for terminal 1 and terminal 2')
  or BAIL_OUT("no quick-start blocks found in $readme");
note(sprintf('%d blocks: %s', scalar @blocks,
		join(' ', map { "T$_->{terminal}\@$_->{line}" } @blocks)));

# ---- a fresh server that preloads finlive, and nothing else ---------------
my $node = PostgreSQL::Test::Cluster->new('quickstart');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'finlive'\n");
$node->start;

# ---- two psql sessions, fed like a paste --------------------------------
my %term;
for my $t (1, 2)
{
	my %s = (in => '', out => '', err => '', seen_err => 0, n => 0);
	$s{h} = IPC::Run::start(
		[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
		'<', \$s{in}, '>', \$s{out}, '2>', \$s{err});
	$term{$t} = \%s;
}

# Paste one block into its terminal; wait until psql has run all of it.
sub paste
{
	my ($b) = @_;
	my $s = $term{ $b->{terminal} };
	my $marker = sprintf('quickstart-block-%d-done', ++$s->{n});
	my $from = length $s->{out};
	my $err_from = length $s->{err};
	$s->{in} .= $b->{text};
	$s->{in} .= "\n" unless $b->{text} =~ /\n\z/;
	$s->{in} .= "\\echo $marker\n";
	my $deadline = time() + 120;
	while (index($s->{out}, $marker, $from) < 0)
	{
		if (!$s->{h}->pumpable)
		{
			$s->{h}->finish;
			last;
		}
		$s->{h}->pump_nb;
		last if time() > $deadline;
		usleep(10_000);
	}
	my $out = substr($s->{out}, $from);
	my $err = substr($s->{err}, $err_from);
	$out =~ s/\Q$marker\E\n?//;
	my $ran = index($s->{out}, $marker, $from) >= 0;
	note("terminal $b->{terminal}, README line $b->{line}:\n$out$err");
	return if ok($ran && $err !~ /(^|\n)(psql:[^\n]*)?(ERROR|FATAL|PANIC):/,
		"terminal $b->{terminal}: the block at README line $b->{line} runs");

	# A broken block: say which and how, and stop (later steps build on it).
	diag("this block of $readme, as pasted into terminal $b->{terminal}:\n"
		  . "$b->{text}\nprinted:\n$out\nand on stderr:\n$err");
	$_->{h}->kill_kill for values %term;
	$node->stop('immediate');
	done_testing();
	exit 0;
}

sub q_orch
{
	my ($sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Poll until $sql (on database orch) prints $want; seconds taken, or undef.
sub wait_for
{
	my ($sql, $want, $seconds) = @_;
	my $t0 = time();
	my $got = '';
	while (time() - $t0 < $seconds)
	{
		my ($ret, $out, $err) = $node->psql($db, $sql);
		$got = $out;
		return time() - $t0 if $ret == 0 && $out eq $want;
		usleep(50_000);
	}
	diag("waited ${seconds}s for [$sql] = [$want]; last: [$got]");
	return undef;
}

my $killed = 0;
for my $b (@blocks)
{
	if ($b->{terminal} == 1 && !$killed && $b->{text} =~ /pg_terminate_backend/)
	{
		# The reader has looked at the live owner for a while: job 42 is
		# deferred, and the fresh server's restart window has closed (the
		# README: "If the job stays running ... restart_grace").
		ok(defined wait_for(qq{SELECT finlive_explain('jobs', $job) ->> 'action'},
				'deferred', 60),
			'while its owner lives, job 42 is deferred');
		is(q_orch(qq{SELECT status FROM jobs WHERE id = $job}),
			'running', 'job 42 is still running under its live owner');
		ok( defined wait_for(
				q{SELECT backend_start + current_setting('finlive.restart_grace')::interval
				                       + interval '1 second' < now()
				    FROM pg_stat_activity WHERE backend_type = 'finlive launcher'},
				't', 120),
			'the restart window of the fresh server has closed');
		$killed = 1;
	}
	paste($b);
}
ok($killed, 'a terminal 1 block ends the owner\'s session (pg_terminate_backend)');

# ---- the job ends reaped ------------------------------------------------------
my $t = wait_for(qq{SELECT status FROM jobs WHERE id = $job}, 'done', 30);
ok(defined $t, 'job 42 ends done after its owner was killed');
note(sprintf('job 42 was done %.2f s after the last block', $t // -1));
is( q_orch(qq{SELECT count(*) || ' ' || min(tier) || ' ' || min(new_status)
	            FROM finlive_reap_log WHERE job_id = $job}),
	'1 2 done',
	'one reap, by Tier-2, logged in finlive_reap_log');
like($term{1}{out}, qr/^UPDATE 0$/m,
	'the fenced UPDATE with the dead owner\'s token updates nothing');
like($term{2}{out}, qr/^token [1-9][0-9]*$/m, 'terminal 2 got a token through \gset');

# ---- end the sessions ---------------------------------------------------------
$term{1}{in} .= "\\q\n";
$term{1}{h}->finish;
is($term{1}{h}->result(0), 0, 'terminal 1 psql exits cleanly');
$term{2}{in} .= "\\q\n";
eval { $term{2}{h}->finish; };    # its server session was terminated
$node->stop;
done_testing();
