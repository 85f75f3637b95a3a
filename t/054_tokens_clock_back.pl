# Fencing tokens stay increasing when the server restarts with its clock
# behind the last token, because of the high-water file; a damaged file is
# reported and the server goes on.
#
# Rules (SPEC "Ownership": tokens strictly increase over every first mark in
# the cluster, across server restarts too; issue 10 "Tests that exist but
# would not catch a regression" (tokens across a restart with the clock
# stepped back: the high-water file must be what the test depends on) and
# finding 11; behaviour.md "Tokens"):
#  - the server is restarted with its clock an hour behind (libfaketime
#    preloaded into the postmaster and so into every backend): the first
#    token after the restart is above every token before it;
#  - control: the same restart with $PGDATA/finlive.token deleted gives a
#    token below the last one, so the first check stands on the file alone;
#  - a finlive.token that holds garbage, or that cannot be read, logs a
#    WARNING naming the file, and the server starts and hands out tokens.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FinliveTest;

my ($faketime) = grep { -e $_ } (
	'/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
	glob('/usr/lib/*/faketime/libfaketime.so.1'),
	'/usr/lib/faketime/libfaketime.so.1');
plan skip_all => 'libfaketime is not installed (apt-get install faketime)' unless $faketime;

my $node = PostgreSQL::Test::Cluster->new('tokens_clock_back');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION finlive');
my $file = $node->data_dir . '/finlive.token';

# One first mark: its token, and a fresh session for each mark.
sub token
{
	my ($job) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "SELECT finlive_mark($job)", stdout => \$out, stderr => \$err);
	diag($err) if $err ne '';
	return $err eq '' ? $out : "error: $err";
}

# Restart with the clock $offset seconds behind (0: the real clock).
sub restart_behind
{
	my ($offset) = @_;
	$node->stop;
	local $ENV{LD_PRELOAD} = $offset ? $faketime : ($ENV{LD_PRELOAD} // '');
	local $ENV{FAKETIME} = "-$offset";
	local $ENV{FAKETIME_NO_CACHE} = '1';
	$node->start;
	return;
}

# How far behind the real clock the server's clock is, in seconds.
sub lag
{
	return time() - $node->safe_psql('postgres', 'SELECT extract(epoch FROM clock_timestamp())');
}

my $t1 = token(1);
like($t1, qr/^\d+$/, 'a token with the real clock');
ok(-s $file, 'the high-water file exists');

# -------------------------------------------------------------------------
# The clock an hour behind: the file keeps tokens increasing
# -------------------------------------------------------------------------

restart_behind(3600);
cmp_ok(lag(), '>', 3000, 'the restarted server\'s clock is an hour behind');
my $t2 = token(2);
cmp_ok($t2, '>', $t1, 'the first token after the restart is above the last one before it');
my $t3 = token(3);
cmp_ok($t3, '>', $t2, 'and they go on increasing');
cmp_ok(slurp_file($file) + 0, '>', $t3, 'the high-water file is ahead of every token handed out');

# Control: the same, without the file.  (The clock is an hour behind every
# token so far: only the file can keep them increasing.)
restart_behind(0);
my $t4 = token(4);
$node->stop;
unlink $file or die "unlink $file: $!";
restart_behind(3600);
cmp_ok(lag(), '>', 3000, 'control: the clock is an hour behind again');
my $t5 = token(5);
cmp_ok($t5, '<', $t4,
	'control: with finlive.token deleted the token goes back, so the checks above stand on the file');

# -------------------------------------------------------------------------
# A damaged file
# -------------------------------------------------------------------------

$node->stop;
append_to_file($file . '.new', "not a token\n");
rename($file . '.new', $file) or die "rename: $!";
my $offset = log_offset($node);
restart_behind(0);
is( log_count($node, qr/^[^\n]*WARNING:  file "finlive\.token" does not hold a fencing token/, $offset),
	1, 'a garbage finlive.token logs one WARNING naming the file');
my $t6 = token(6);
like($t6, qr/^\d+$/, 'the server started and hands out tokens');
cmp_ok(token(7), '>', $t6, 'increasing ones');
is(slurp_file($file) =~ /^\d+\n$/ ? 'token' : 'garbage', 'token', 'the file holds a token again');

$node->stop;
chmod 0000, $file or die "chmod: $!";
$offset = log_offset($node);
restart_behind(0);
SKIP:
{
	skip 'running as root: a mode-0000 file is still readable', 1 if $> == 0;
	is( log_count($node, qr/^[^\n]*WARNING:  could not read file "finlive\.token": Permission denied/, $offset),
		1, 'an unreadable finlive.token logs one WARNING naming the file');
}
my $t8 = token(8);
like($t8, qr/^\d+$/, 'the server started and hands out tokens');
my $t9 = token(9);
ok($t8 =~ /^\d+$/ && $t9 =~ /^\d+$/ && $t9 > $t8, 'increasing ones');
is(log_count($node, qr/^[^\n]*(ERROR|FATAL|PANIC):  /, $offset), 0, 'without an error');

$node->stop;
done_testing();
