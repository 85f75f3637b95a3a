# Each reaper shows in pg_stat_activity with its database, under a finlive
# name.
#
# Rules (SPEC "The worker", [1.3] "Every database"): each reaper shows in
# pg_stat_activity with its database and under a name that says finlive;
# the launcher, which serves no database, shows under a finlive name too.
# On PostgreSQL 17 and later an extension can name its wait events: there,
# an idle reaper and the launcher wait under a finlive wait event (before
# 17 every extension waits as "Extension", which is not checked).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FinliveTest;

my @dbs = qw(app1 app2);

my $node = PostgreSQL::Test::Cluster->new('db_pg_stat_activity');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'finlive'
finlive.naptime = 60000
});
$node->start;
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION finlive');
}
ok( $node->poll_query_until(
		'postgres', 'SELECT (' . reaper_databases_sql() . ") = 'app1,app2'"),
	'each database with the extension has its reaper');

# Every background worker that is not one of PostgreSQL's own (which differ
# by version: io workers from 18, ...): those of a library show as
# "background worker" unless they name their type, as finlive's do.
my $extra = q{SELECT datname, backend_type, application_name FROM pg_stat_activity
               WHERE backend_type NOT IN ('client backend', 'autovacuum launcher',
                     'logical replication launcher', 'background writer',
                     'checkpointer', 'walwriter', 'archiver', 'startup',
                     'walsender', 'walreceiver', 'autovacuum worker', 'io worker',
                     'walsummarizer', 'slotsync worker', 'checksums launcher',
                     'checksums worker')};
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(coalesce(datname, '-') || ' '
		                   || (backend_type ILIKE '%finlive%')::text || ' '
		                   || (application_name ILIKE '%finlive%')::text, ', '
		                   ORDER BY datname NULLS FIRST)
		   FROM ($extra) p"),
	'- true true, app1 true true, app2 true true',
	'the launcher (no database) and one reaper per database, each named finlive '
	  . 'in backend_type and application_name');

my $version = $node->safe_psql('postgres', 'SHOW server_version_num');
SKIP:
{
	skip "named wait events need PostgreSQL 17 (this is $version)", 2
	  if $version < 170000;
	for my $what ([ 'a reaper', worker_pid_sql('app1') ], [ 'the launcher', launcher_pid_sql() ])
	{
		my ($name, $sql) = @$what;
		ok( $node->poll_query_until(
				'postgres',
				"SELECT state IS DISTINCT FROM 'active' AND wait_event ILIKE '%finlive%'
				   FROM pg_stat_activity WHERE pid = ($sql)"),
			"$name waits under a finlive wait event");
	}
}

$node->stop;
done_testing();
