#!/usr/bin/env bash
# finlive benchmarks, side by side with what users would use instead (issue 14).
#
#   bash bench/run.sh          # as root, from a clone; about 10 minutes
#   bash bench/matrix.sh       # the same on PostgreSQL 15, 17, 18 and 19, in roots
#
# Installs what it needs (test/deps.sh: the server, its headers, pgbench,
# valgrind), builds the current tree as the unprivileged "postgres" user and
# installs it into a private prefix that only the benchmark's own throwaway
# cluster loads (extension_destdir + dynamic_library_path), so a concurrent
# "make install" elsewhere cannot change the code under test mid-run.  Then
# it measures every row of issue 14 in one run, each against its
# comparator, writes the figures (figures-<major>.tsv), prints the table and
# writes bench/results.md (bench/report.sh renders it; matrix.sh merges the
# figures of several versions).  A goal that is missed is profiled
# (bench/profile.sh) and the profile goes into the same results.
#
# Benchmarks are not tests: a missed goal is printed as MISSED, never fails
# the run.  The machine may be shared and noisy: every pgbench comparison
# runs its variants interleaved, round after round, and reports medians and
# the median of the ratios within a round.
#
# Knobs (environment; the defaults keep a run near 10 minutes):
#   ROUNDS (9) x SECS (2): pgbench rounds and seconds per run, CLIENTS (4)
#   TICKS (7): ticks per reaper and table; REAPS (5): reaping ticks per reaper
#   TRIALS (25): detection trials per variant; STREAMS (5): databases the
#   periodic reaper's trials run in at once; QUIET_MS (500: no owner exit
#   for this long before a wake-up trial); IDLE_SECS (60); BURST (40)
#   BENCH_PROFILE (auto: profile the missed goals; all; none)
#   FINLIVE_BENCH_PATCH: a patch for the private copy (harness debugging only)
#   FINLIVE_BENCH_COMMIT: the commit under test, when the tree has no .git
#   (matrix.sh passes it into the roots); FINLIVE_BENCH_OUT: where the
#   figures go (default: a temporary directory); FINLIVE_BENCH_RESULTS: the
#   results file to write (default bench/results.md; "-" = none)
#   PGPORT (55741; the cluster listens on a private Unix socket only)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bench=$here/bench
ROUNDS=${ROUNDS:-9}
SECS=${SECS:-2}
CLIENTS=${CLIENTS:-4}
TICKS=${TICKS:-7}
REAPS=${REAPS:-5}
TRIALS=${TRIALS:-25}
STREAMS=${STREAMS:-5}
IDLE_SECS=${IDLE_SECS:-60}
BURST=${BURST:-40}
QUIET_MS=${QUIET_MS:-500}
BENCH_PROFILE=${BENCH_PROFILE:-auto}
export PGPORT=${PGPORT:-55741}
started=$(date +%s)

say() { printf '[bench %4ds] %s\n' $(($(date +%s) - started)) "$*" >&2; }

# ---------------------------------------------------------------- setup ---
# shellcheck source=test/deps.sh
. "$here/test/deps.sh"
finlive_install_deps
finlive_want_cmd valgrind valgrind
finlive_want_cmd callgrind_annotate valgrind
finlive_want_file "$PGBIN/pgbench" "postgresql-client-$PG_MAJOR"
finlive_want_file "$PGBIN/psql" "postgresql-client-$PG_MAJOR"
[ -n "${FINLIVE_BENCH_COMMIT:-}" ] || finlive_want_cmd git git
finlive_install_wanted
# pg_walinspect (used only to break down WAL that should not be there)
# comes with Debian's server package

work=$(mktemp -d /tmp/finlive-bench.XXXXXX)
chmod 755 "$work"
out=${FINLIVE_BENCH_OUT:-$work/out}
mkdir -p "$out"
figs=$out/figures-$PG_MAJOR.tsv
: >"$figs"
holders=()
cleanup() {
	local p
	for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
	cluster_stop
	rm -rf "$work"
}

# fig KEY VALUE: one figure of this run (report.sh renders them)
fig() { printf '%s\t%s\n' "$1" "$2" >>"$figs"; }

say "building finlive"
# the revision under test: the host's, passed in, or this clone's
rev=${FINLIVE_BENCH_COMMIT:-$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)}
dirty=${FINLIVE_BENCH_DIRTY:-$(git -C "$here" status --porcelain -- src Makefile finlive.control 'finlive--*.sql' 2>/dev/null | grep -q . && echo "uncommitted changes in src" || true)}
mkdir "$work/src"
(cd "$here" && tar --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=tmp_check --exclude=results -cf - .) | tar -C "$work/src" -xf -
# FINLIVE_BENCH_PATCH=file: for debugging the harness only, a patch applied
# to the private copy (results.md then says so in its header)
if [ -n "${FINLIVE_BENCH_PATCH:-}" ]; then
	patch -s -d "$work/src" -p1 <"$FINLIVE_BENCH_PATCH"
	dirty="${dirty:+$dirty, }patched with $(basename "$FINLIVE_BENCH_PATCH")"
fi
chown -R postgres: "$work/src"
runuser -u postgres -- make -C "$work/src" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
runuser -u postgres -- make -C "$work/src" -s PG_CONFIG="$PG_CONFIG" >/dev/null 2>"$work/build.log" ||
	{ cat "$work/build.log" >&2; exit 1; }
libdir=$("$PG_CONFIG" --pkglibdir)
# The private prefix needs Debian's extension_destdir; a server without it
# (PostgreSQL 19 so far) gets the build installed into its own directories,
# which only a fresh root (test/roots.sh) may do: nothing else uses them.
gucs=$("$PGBIN/postgres" --describe-config 2>/dev/null | cut -f1)
if grep -qx extension_destdir <<<"$gucs"; then
	make -C "$work/src" -s PG_CONFIG="$PG_CONFIG" install DESTDIR="$work/stage" >/dev/null
	chmod -R a+rX "$work/stage"
	stage_conf=("dynamic_library_path = '$work/stage$libdir:\$libdir'" "extension_destdir = '$work/stage'")
	expect_so=$work/stage$libdir/finlive.so
elif [ -n "${FINLIVE_ROOT_VERSION:-}" ]; then
	make -C "$work/src" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	stage_conf=()
	expect_so=$libdir/finlive.so
else
	echo "bench: this server has no extension_destdir; run bench/run.sh in a root (bench/matrix.sh $PG_MAJOR)" >&2
	exit 1
fi

# shellcheck source=test/cluster.sh
. "$here/test/cluster.sh"
# keep the server log of every run (also of a server that failed to start)
eval "cluster_stop_orig() $(declare -f cluster_stop | tail -n +2)"
cluster_stop() {
	[ -z "${CLUSTER_DIR:-}" ] || cp "$CLUSTER_DIR/server.log" "$out/server-$PG_MAJOR.log" 2>/dev/null || true
	cluster_stop_orig
}
# A reaper per database: 20 idle databases, STREAMS copies and the rest
# need more background worker slots than the default 8.
trap cleanup EXIT
cluster_start "${stage_conf[@]}" "max_worker_processes = 48"
trap cleanup EXIT
pg_bin=$PGBIN

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_v() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }
restart() { runuser -u postgres -- "$pg_bin/pg_ctl" -D "$PGDATA" -l "$CLUSTER_DIR/server.log" -m fast -w restart >/dev/null; }
reload() { psql_q -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3; }
# The workers stay paused (finlive.reaper = off) except in the rows that
# time them: no periodic tick may reap a benchmark's jobs, or run beside a
# timed tick.
set_conf() { psql_q -c "ALTER SYSTEM SET $1 = '$2'"; reload; }
set_conf finlive.reaper off

# A backend must run the private build only, never a finlive.so from $libdir.
psql_q -c "CREATE DATABASE bench_own"
psql_q -d bench_own -c "CREATE EXTENSION finlive"
loaded=$(psql_v -d bench_own <<'EOF'
SELECT finlive_is_active(1) IS NOT NULL AS called \gset
SELECT pg_backend_pid() AS pid \gset
\setenv FINLIVE_BENCH_PID :pid
\! grep -o '/[^ ]*finlive\.so.*' /proc/$FINLIVE_BENCH_PID/maps | sort -u
EOF
)
if [ "$loaded" != "$expect_so" ]; then
	echo "bench: backends load an unexpected finlive.so: $loaded" >&2
	exit 1
fi
pgver=$(psql_v -c "SHOW server_version")

# median / percentile of numbers on stdin (linear interpolation, like
# percentile_cont)
pct() {
	sort -g | awk -v p="$1" '{ a[NR] = $1 }
		END { if (NR == 0) { print "nan"; exit }
		      x = 1 + p * (NR - 1); i = int(x); f = x - i;
		      v = (i < NR) ? a[i] + f * (a[i + 1] - a[i]) : a[i];
		      printf "%.6g\n", v }'
}
median() { pct 0.5; }
# print a number with n decimals ("nan" stays)
fmt() { awk -v a="$1" -v n="$2" 'BEGIN { if (a == "nan" || a == "") print "nan"; else printf "%.*f\n", n, a }'; }
# a / b with n decimals
div() { awk -v a="$1" -v b="$2" -v n="${3:-2}" 'BEGIN { if (b == 0 || a == "nan" || b == "nan" || a == "" || b == "") print "nan"; else printf "%.*f\n", n, a / b }'; }
# met when a OP b
verdict() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
	if (a == "nan" || a == "") { print "MISSED"; exit }
	ok = (op == ">=") ? (a + 0 >= b + 0) : (op == "==") ? (a + 0 == b + 0) : (a + 0 <= b + 0);
	print ok ? "met" : "MISSED" }'; }
# goal KEY VALUE OP BOUND: record the verdict of a goal
goal() { local v; v=$(verdict "$2" "$3" "$4"); fig "verdict.$1" "$v"; [ "$v" = met ] || missed+=("$1"); }
missed=()

# One pgbench run: prints its TPS (nan when it failed).
pgb() {
	local script=$1; shift
	local o
	o=$(pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" "$@" -f "$bench/pgbench/$script" 2>&1) || true
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$o" | grep . \
		|| { echo "pgbench $script failed: $(tail -2 <<<"$o")" >&2; echo nan; }
}
# Interleaved rounds of several pgbench scripts, the order reversed every
# other round so slow drift hits every variant alike; one TPS per round and
# line in $work/tps.<script>.
pgb_rounds() {
	local db=$1 r s order
	shift
	for s in "$@"; do : >"$work/tps.$s"; done
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then order=("$@"); else order=(); for s in "$@"; do order=("$s" "${order[@]}"); done; fi
		for s in "${order[@]}"; do pgb "$s" -d "$db" >>"$work/tps.$s"; done
	done
}
tps() { fmt "$(grep -v nan "$work/tps.$1" | median)" 0; }
# Ratio of two variants: the median over rounds of the ratio within each
# round (runs seconds apart share the machine's mood), with its range.
ratio() { # script-a script-b decimals -> "median min max"
	paste "$work/tps.$1" "$work/tps.$2" | awk '$1 != "nan" && $2 != "nan" && $2 > 0 { print $1 / $2 }' >"$work/ratio"
	echo "$(fmt "$(median <"$work/ratio")" "$3") $(fmt "$(pct 0 <"$work/ratio")" "$3") $(fmt "$(pct 1 <"$work/ratio")" "$3")"
}
raw_tps() { awk '{ printf "%s%s", (NR > 1 ? " " : ""), ($1 == "nan") ? "-" : sprintf("%.0f", $1) }' "$work/tps.$1"; }

# A background session that marks jobs and stays connected: holder NAME DB SQL
holder() {
	psql -X -q -d "$2" -c "SET application_name = 'finlive_bench_$1'" -c "$3" \
		-c "SELECT pg_sleep(3600)" >"$work/holder_$1.log" 2>&1 &
	holders+=($!)
}
# wait until DB has N owners
wait_owners() {
	local i
	for i in $(seq 1 600); do
		[ "$(psql_v -d "$1" -c "SELECT (finlive_snapshot()->>'active')::int")" = "$2" ] && return 0
		sleep 0.05
	done
	echo "bench: $1 never had $2 owners" >&2
	return 1
}
# End the holder sessions started so far (their backends, by application
# name), then reap their psql processes; only unreaped children are ever
# killed, so no pid can have been reused.
stop_holders() {
	local p
	psql -X -q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'finlive_bench_%'" >/dev/null
	for p in "${holders[@]}"; do wait "$p" 2>/dev/null || true; done
	holders=()
}

fig meta.pg "$pgver"
fig meta.major "$PG_MAJOR"
fig meta.commit "$rev"
fig meta.dirty "$dirty"
fig meta.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
fig meta.cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
fig meta.cores "$(nproc)"
fig meta.mem "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
fig meta.os "$(. /etc/os-release; echo "$PRETTY_NAME")"
fig meta.knobs "ROUNDS=$ROUNDS SECS=$SECS CLIENTS=$CLIENTS TICKS=$TICKS REAPS=$REAPS TRIALS=$TRIALS STREAMS=$STREAMS QUIET_MS=$QUIET_MS IDLE_SECS=$IDLE_SECS BURST=$BURST"
fig meta.loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"

# ========================================================== 1. ownership ===
say "ownership: pgbench ${ROUNDS}x${SECS}s per variant, $CLIENTS clients"
psql_q -d bench_own -f "$bench/sql/owner_tables.sql"
t_own=$(date +%s)
pgb_rounds bench_own floor_1stmt.sql floor_2stmt.sql mark_clear.sql mark_clear_stage.sql \
	advisory_pair.sql table_row.sql table_row_unlogged.sql
read -r a lo hi <<<"$(ratio mark_clear.sql advisory_pair.sql 2)"
fig own.mark_adv "$a|$lo|$hi|$(tps mark_clear.sql)|$(tps advisory_pair.sql)"
goal own.mark_adv "$a" '>=' 0.9
read -r a lo hi <<<"$(ratio mark_clear_stage.sql advisory_pair.sql 2)"
fig own.stage_adv "$a|$lo|$hi|$(tps mark_clear_stage.sql)|$(tps advisory_pair.sql)"
goal own.stage_adv "$a" '>=' 0.9
read -r a lo hi <<<"$(ratio mark_clear.sql table_row.sql 1)"
fig own.mark_tbl "$a|$lo|$hi|$(tps mark_clear.sql)|$(tps table_row.sql)"
read -r a lo hi <<<"$(ratio mark_clear.sql table_row_unlogged.sql 1)"
fig own.mark_tblu "$a|$lo|$hi|$(tps mark_clear.sql)|$(tps table_row_unlogged.sql)"
read -r a _ _ <<<"$(ratio mark_clear.sql floor_2stmt.sql 2)"
read -r b _ _ <<<"$(ratio advisory_pair.sql floor_2stmt.sql 2)"
fig own.floor2 "$(tps floor_2stmt.sql)|$a|$b"

say "ownership: is a job owned?  a holder session marks 10,000 jobs"
holder isactive bench_own "SELECT count(finlive_mark(g)) FROM generate_series(1, 10000) g"
wait_owners bench_own 10000
owned=$(psql_v -d bench_own -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 7966")
pgb_rounds bench_own floor_1stmt.sql is_active.sql is_active_pg_locks.sql
read -r a lo hi <<<"$(ratio is_active.sql is_active_pg_locks.sql 0)"
fig own.isact "$a|$lo|$hi|$(tps is_active.sql)|$(tps is_active_pg_locks.sql)|$owned"
goal own.isact "$a" '>=' 100
read -r a _ _ <<<"$(ratio is_active.sql floor_1stmt.sql 2)"
fig own.floor1 "$(tps floor_1stmt.sql)|$a"
stop_holders
for s in floor_1stmt floor_2stmt mark_clear mark_clear_stage advisory_pair table_row table_row_unlogged is_active is_active_pg_locks; do
	fig "raw.tps.$s" "$(raw_tps $s.sql)"
done
fig time.own $(($(date +%s) - t_own))

# ============================================================== 2. ticks ===
t_ticks=$(date +%s)
say "ticks: the comparators decide as finlive does (10 scenario jobs, every tier and outcome)"
psql_q -c "CREATE DATABASE bench_check"
psql_q -c "ALTER DATABASE bench_check SET finlive.restart_grace = 0" \
	-c "ALTER DATABASE bench_check SET finlive.claim_grace = '1h'"
psql_q -d bench_check -c "CREATE EXTENSION finlive"
psql_q -d bench_check -v rows=10 -f "$bench/sql/jobs_setup.sql" >/dev/null
psql_q -d bench_check -f "$bench/sql/reaper_plpgsql.sql" -f "$bench/sql/scenario.sql" \
	-c "INSERT INTO bench_target VALUES (true, false)"
holder check bench_check "SELECT finlive_mark(1), finlive_mark(4), finlive_mark(7), finlive_mark(8)"
wait_owners bench_check 4
check_fin=$(psql_v -d bench_check -c "SELECT bench_scenario('finlive')")
check_agree=yes
for reaper in plpgsql plpgsql_noiso plpgsql_plain; do
	[ "$(psql_v -d bench_check -c "SELECT bench_scenario('$reaper')")" = "$check_fin" ] || check_agree=no
done
fig tick.check "$check_agree|$check_fin"
stop_holders
psql_q -c "DROP DATABASE bench_check WITH (FORCE)"

for size in 100000 1000000; do
	db=bench_$size
	say "ticks: building $db ($size jobs, 10,000 running, 1,000 owned by another session)"
	psql_q -c "CREATE DATABASE $db"
	psql_q -c "ALTER DATABASE $db SET finlive.restart_grace = 0" \
		-c "ALTER DATABASE $db SET finlive.claim_grace = '1h'"
	psql_q -d "$db" -c "CREATE EXTENSION finlive"
	psql_q -d "$db" -c "CREATE EXTENSION pg_walinspect" 2>/dev/null || true
	psql_q -d "$db" -v rows=$size -f "$bench/sql/jobs_setup.sql" >/dev/null
	psql_q -d "$db" -f "$bench/sql/reaper_plpgsql.sql" -f "$bench/sql/ticks.sql" \
		-c "INSERT INTO bench_target VALUES (true, false)"
	holder "ticks_$size" "$db" "SELECT count(finlive_mark(g, g, 'deploy-staging')) FROM generate_series($size - 100000 + 100, $size, 100) g"
	wait_owners "$db" 1000
done

say "ticks: $TICKS ticks per reaper and table, interleaved (one warm-up round first)"
reapers="finlive plpgsql plpgsql_plain"
for ((i = 0; i <= TICKS; i++)); do
	label=default; ((i == 0)) && label=warm
	for db in bench_1000000 bench_100000; do
		for reaper in $reapers; do
			psql_q -d "$db" -c "CALL bench_ticks('$reaper', '$label', 1)"
		done
	done
done
tick() { # db reaper [label] -> median ms
	fmt "$(psql_v -d "$1" -c "SELECT ms FROM bench_tick WHERE reaper = '$2' AND label = '${3:-default}'" | median)" 1
}
work_of() { # db reaper [label] -> the distinct "actions, defers" of its ticks
	psql_v -d "$1" -c "SELECT string_agg(DISTINCT actions || ' actions, ' || defers || ' defers', ' | ')
		FROM bench_tick WHERE reaper = '$2' AND label = '${3:-default}'"
}
t1m=$(tick bench_1000000 finlive); p1m=$(tick bench_1000000 plpgsql); q1m=$(tick bench_1000000 plpgsql_plain)
t100=$(tick bench_100000 finlive); p100=$(tick bench_100000 plpgsql); q100=$(tick bench_100000 plpgsql_plain)
fig tick.1m "$(div "$p1m" "$t1m")|$t1m|$p1m|$(div "$q1m" "$t1m")|$q1m"
fig tick.100k "$(div "$p100" "$t100")|$t100|$p100|$(div "$q100" "$t100")|$q100"
scale=$(div "$t1m" "$t100")
fig tick.scale "$scale|$(div "$p1m" "$p100")|$(div "$q1m" "$q100")"
goal tick.scale "$scale" '<=' 1.1
same_work=yes
ref=$(work_of bench_1000000 finlive)
for db in bench_1000000 bench_100000; do
	for reaper in $reapers; do
		[ "$(work_of "$db" "$reaper")" = "$ref" ] || same_work=no
		fig "raw.tick.$reaper.${db#bench_}" "$(psql_v -d "$db" -c "SELECT string_agg(round(ms::numeric, 1)::text, ' ') FROM bench_tick WHERE reaper = '$reaper' AND label = 'default'")"
	done
done
fig tick.work "$same_work|$ref"

# Where a finlive tick's time goes, at both sizes: one more tick each under
# auto_explain (nested statements, ANALYZE, BUFFERS): the statements the
# tick ran, their time and the buffers they touched (bench/profile.sh
# prints it when the tick.scale goal is missed).
explain_tick() { # db -> "ms|shared hits|first line of the query" per statement, slowest first
	psql -X -q -d "$1" -c "LOAD 'auto_explain'" \
		-c "SET auto_explain.log_min_duration = 0" \
		-c "SET auto_explain.log_nested_statements = on" \
		-c "SET auto_explain.log_analyze = on" \
		-c "SET auto_explain.log_buffers = on" \
		-c "SET auto_explain.log_level = notice" \
		-c "CALL bench_ticks('finlive', 'explain', 1)" 2>&1 |
	awk '
		function flush() { if (dur != "") printf "%s|%s|%s\n", dur, hit, q }
		/^NOTICE:  duration: / { flush(); dur = $3; hit = ""; q = ""; next }
		/Query Text:/ && q == "" { q = $0; sub(/.*Query Text: */, "", q); q = substr(q, 1, 70); gsub(/\|/, "/", q) }
		/Buffers: shared hit=/ && hit == "" { h = $0; sub(/.*shared hit=/, "", h); sub(/[^0-9].*/, "", h); hit = h }
		END { flush() }' | sort -t'|' -k1,1 -gr | head -4 | tr '\n' ';'
}
fig prof.tick1m "$(explain_tick bench_1000000)"
fig prof.tick100k "$(explain_tick bench_100000)"

# ---------------------------------------------- 4a. WAL of a deferring tick
# In the 100,000-row database: the 1,000 owned jobs are deferred, the 9,000
# others left alone.  The WAL position around each tick (EXPLAIN ANALYZE
# BUFFERS of the tick also counts the pages it dirtied); the first tick
# right after a CHECKPOINT, then 5 more.
say "limits: WAL written by a tick that only defers 1,000 owned jobs"
wal_tick() { # -> "lsn-bytes|dirtied|defers|lsn0|lsn1|own-wal-bytes|xid"
	psql_v -q -d bench_100000 <<'EOF'
SELECT pg_current_wal_lsn() AS l0 \gset
BEGIN;
SELECT bench_explain_tick() AS ex \gset
SELECT coalesce(pg_current_xact_id_if_assigned()::text, 'none') AS xid \gset
COMMIT;
SELECT pg_current_wal_lsn() AS l1 \gset
SELECT pg_wal_lsn_diff(:'l1', :'l0') || '|' ||
       ((:'ex'::jsonb)->0->'Plan'->>'Shared Dirtied Blocks') || '|' ||
       ((:'ex'::jsonb)->0->'Plan'->>'Actual Rows')::numeric::bigint || '|' || :'l0' || '|' || :'l1' || '|' ||
       ((:'ex'::jsonb)->0->'Plan'->>'WAL Bytes') || '|' || :'xid';
EOF
}
wal_records() { # lsn0 lsn1 -> record types between them
	sleep 0.5
	psql_v -d bench_100000 -c "SELECT string_agg(resource_manager || '/' || record_type || ' x' || n || ' ' || b || ' B', ', ')
		FROM (SELECT resource_manager, record_type, count(*) n, sum(record_length) b
		        FROM pg_get_wal_records_info('$1', '$2') GROUP BY 1, 2) s" 2>/dev/null || echo "(pg_walinspect unavailable)"
}
psql_q -d bench_100000 <<'EOF'
CREATE FUNCTION bench_explain_tick() RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    plan text;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) SELECT * FROM finlive_reap_once()' INTO plan;
    RETURN plan;
END;
$fn$;
EOF
psql_q -d bench_100000 -c "CHECKPOINT"
# The tick's own WAL: EXPLAIN's WAL Bytes (what this backend wrote during
# the tick) plus, if the tick took a transaction id, its commit record;
# the WAL position around it also counts what other processes wrote meanwhile.
IFS='|' read -r w_first d_first n_first l0 l1 o_first x_first <<<"$(wal_tick)"
rec_first=
[ "$w_first" != 0 ] && rec_first=$(wal_records "$l0" "$l1")
w_later=0; d_later=0; o_later=0; rec_later=; w_later_all=; x_later=none
for i in 1 2 3 4 5; do
	IFS='|' read -r w d n l0 l1 o x <<<"$(wal_tick)"
	w_later_all="$w_later_all $w/$o"
	((w > w_later)) && w_later=$w
	((d > d_later)) && d_later=$d
	((o > o_later)) && o_later=$o
	[ "$x" = none ] || x_later=$x
	[ "$w" != 0 ] && [ -z "$rec_later" ] && rec_later=$(wal_records "$l0" "$l1")
done
fig lim.wal "$w_first|$w_later|$d_first|$d_later|$n_first|$rec_first|$rec_later|${w_later_all# }|$o_first|$o_later|$x_first|$x_later"
own_first=$o_first; [ "$x_first" = none ] || own_first=$((o_first + 1))
own_later=$o_later; [ "$x_later" = none ] || own_later=$((o_later + 1))
goal lim.wal_first "$own_first" '<=' 0
goal lim.wal_later "$own_later" '<=' 0
goal lim.dirtied "$((d_first > d_later ? d_first : d_later))" '<=' 0

stop_holders
for db in bench_1000000 bench_100000; do psql_q -c "DROP DATABASE $db WITH (FORCE)"; done

# ---------------------------------------------------- 2b. reaping 1,000 jobs
say "ticks: a tick that reaps 1,000 jobs (update, on_reap row, NOTIFY, log row each), $REAPS per reaper"
psql_q -c "CREATE DATABASE bench_reap"
psql_q -c "ALTER DATABASE bench_reap SET finlive.restart_grace = 0"
psql_q -d bench_reap -c "CREATE EXTENSION finlive"
psql_q -d bench_reap -v rows=100000 -v reap=1000 -f "$bench/sql/reap_setup.sql" >/dev/null
psql_q -d bench_reap -f "$bench/sql/reaper_plpgsql.sql" -f "$bench/sql/ticks.sql" \
	-c "INSERT INTO bench_target VALUES (false, true)"
reap_reapers="finlive plpgsql plpgsql_noiso"
for ((i = 0; i <= REAPS; i++)); do
	label=reap; ((i == 0)) && label=warm
	order=$reap_reapers
	((i % 2)) && order=$(echo "$reap_reapers" | tr ' ' '\n' | tac | tr '\n' ' ')
	for reaper in $order; do
		psql_q -d bench_reap -c "CALL bench_reap_reset()"
		psql_q -d bench_reap -c "VACUUM jobs, bench_hook_log, bench_reap_log, finlive_reap_log"
		psql_q -d bench_reap -c "CALL bench_ticks('$reaper', '$label', 1)"
		# each reap's writes really happened
		psql_v -d bench_reap -c "SELECT '$reaper', (SELECT count(*) FROM bench_hook_log),
			(SELECT count(*) FROM finlive_reap_log) + (SELECT count(*) FROM bench_reap_log),
			(SELECT count(*) FROM jobs j JOIN bench_reap_set s USING (id) WHERE j.status = 'done')" >>"$work/reap_writes"
	done
done
rf=$(tick bench_reap finlive reap); rp=$(tick bench_reap plpgsql reap); rn=$(tick bench_reap plpgsql_noiso reap)
reap_work=yes
for reaper in $reap_reapers; do
	[ "$(work_of bench_reap "$reaper" reap)" = "1000 actions, 0 defers" ] || reap_work=no
	fig "raw.reap.$reaper" "$(psql_v -d bench_reap -c "SELECT string_agg(round(ms::numeric, 1)::text, ' ') FROM bench_tick WHERE reaper = '$reaper' AND label = 'reap'")"
done
awk -F'|' '$2 != 1000 || $3 != 1000 || $4 != 1000 { bad = 1 } END { exit bad }' "$work/reap_writes" || reap_work=no
fig reap.work "$reap_work|$(sort -u "$work/reap_writes" | tr '|\n' '/ ')"
r_noiso=$(div "$rf" "$rn")
fig reap.noiso "$r_noiso|$rf|$rn"
fig reap.iso "$(div "$rf" "$rp")|$rf|$rp"
fig reap.isocost "$(div "$rp" "$rn")|$rp|$rn|$(awk -v a="$rp" -v b="$rn" 'BEGIN { printf "%.1f", (a - b) }')"
goal reap.noiso "$r_noiso" '<=' 1.5
# bench_reap stays for bench/profile.sh (its reaper finds nothing running)
fig time.ticks $(($(date +%s) - t_ticks))

# ========================================================== 3. detection ===
t_det=$(date +%s)
set_conf finlive.restart_grace 0
set_conf finlive.reaper on
naptime=$(psql_v -c "SHOW finlive.naptime")
nap_ms=$(psql_v -c "SELECT setting FROM pg_settings WHERE name = 'finlive.naptime'")
fig meta.naptime "$naptime"

# new_db NAME [FILL]: a database with the extension and the detection target
new_db() {
	psql_q -c "CREATE DATABASE $1"
	psql_q -d "$1" -c "CREATE EXTENSION finlive"
	psql_q -d "$1" -f "$bench/sql/detect_setup.sql" >/dev/null
	[ -z "${2:-}" ] || psql_q -d "$1" -v n="$2" -f "$bench/sql/detect_fill.sql" >/dev/null
}
# wait until database DB has a reaper (pid printed)
reaper_of() {
	local i p
	for i in $(seq 1 600); do
		p=$(psql_v -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'finlive reaper' AND datname = '$1'")
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.05
	done
	echo "bench: no reaper in $1 after 30 s" >&2
	return 1
}
# trials DB MODE N FIRST-JOB OUT: N detection trials, one after another.
# MODE wake: an isolated death on an idle server: the owner is terminated
# after QUIET_MS (500) without any owner exit (the reaper gathers the exits
# that come within 100 ms of an exit tick into the next tick, by design:
# the burst row measures that), and the status is polled continuously;
# periodic: poll every 1 ms, and terminate
# the owner at a random moment of the naptime (a periodic reaper's delay
# depends on where in its period the owner dies; right after a tick would
# measure the worst case).  Each line of OUT:
# seen_ms|log_ms|polls|status|upd_ms|deferred
trials() {
	local db=$1 mode=$2 n=$3 job=$4 o=$5 k owner sh def poll=0
	[ "$mode" = periodic ] && poll=1
	for ((k = 0; k < n; k++, job++)); do
		# the owner marks first: an unowned job past the grace would be
		# reaped by the next periodic tick before the trial starts
		psql -X -q -d "$db" -c "SET application_name = 'finlive_bench_owner'" \
			-c "SELECT finlive_mark($job, $job, 'deploy-staging')" \
			-c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
		sh=$!
		owner=
		for _ in $(seq 1 500); do
			owner=$(psql_v -d "$db" -c "SELECT pid FROM finlive_owners WHERE job_id = $job")
			[ -n "$owner" ] && break
			sleep 0.01
		done
		if [ -z "$owner" ]; then
			echo "|||||no-owner" >>"$o"
			kill "$sh" 2>/dev/null || true
			wait "$sh" 2>/dev/null || true
			continue
		fi
		psql_q -d "$db" -c "CALL bench_detect_job($job)"
		# the job is deferred now, as the reaper sees it (nothing taken, no tick)
		def=$(psql_v -d "$db" -c "SELECT finlive_explain('det_jobs', $job)->>'action'")
		if [ "$mode" = periodic ]; then
			sleep "$(awk -v s="$(od -An -N2 -tu2 /dev/urandom)" -v n="$nap_ms" 'BEGIN { printf "%.3f", s / 65536 * n / 1000 }')"
		else
			sleep "$(awk -v q="$QUIET_MS" 'BEGIN { printf "%.3f", q / 1000 }')"
		fi
		echo "$(psql_v -d "$db" -c "SELECT seen_ms, log_ms, polls, new_status, upd_ms FROM bench_detect($owner, $job, $poll)")|$def" >>"$o"
		wait "$sh" 2>/dev/null || true
	done
}
# stats of a trials file: "p50 p95 max n missed" of seen_ms, in ms
dstats() {
	local f=$1
	echo "$(fmt "$(awk -F'|' '$1 != "" { print $1 }' "$f" | pct 0.5)" 2) $(fmt "$(awk -F'|' '$1 != "" { print $1 }' "$f" | pct 0.95)" 2) $(fmt "$(awk -F'|' '$1 != "" { print $1 }' "$f" | pct 1)" 2) $(awk -F'|' '$1 != "" { n++ } END { print n + 0 }' "$f") $(awk -F'|' '$1 == "" { n++ } END { print n + 0 }' "$f")"
}
dextra() { # "log p50|us per poll|outcomes|not deferred first|row changed p50|visible after that p50|p95"
	local f=$1
	echo "$(fmt "$(awk -F'|' '$2 != "" { print $2 }' "$f" | pct 0.5)" 2)|$(awk -F'|' '$1 != "" && $3 > 0 { s += $1; n += $3 } END { if (n) printf "%.1f", 1000 * s / n; else print "nan" }' "$f")|$(awk -F'|' '{ print ($4 == "" ? "none" : $4) }' "$f" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')|$(awk -F'|' '$6 != "deferred" { n++ } END { print n + 0 }' "$f")|$(fmt "$(awk -F'|' '$5 != "" { print $5 }' "$f" | pct 0.5)" 2)|$(fmt "$(awk -F'|' '$5 != "" && $1 != "" { print $1 - $5 }' "$f" | pct 0.5)" 2)|$(fmt "$(awk -F'|' '$5 != "" && $1 != "" { print $1 - $5 }' "$f" | pct 0.95)" 2)"
}
raw_trials() { awk -F'|' '{ printf "%s%s", (NR > 1 ? " " : ""), ($1 == "" ? "-" : sprintf("%.2f", $1)) }' "$1"; }

say "detection: $TRIALS trials, idle target, reaper at naptime $naptime"
new_db bench_detect
reaper_of bench_detect >/dev/null
sleep 1
: >"$work/det.idle"
trials bench_detect wake "$TRIALS" 1 "$work/det.idle"
read -r p50 p95 pmax n miss <<<"$(dstats "$work/det.idle")"
fig det.idle "$p50|$p95|$pmax|$n|$miss|$(dextra "$work/det.idle")"
fig raw.det.idle "$(raw_trials "$work/det.idle")"
goal det.idle "$p95" '<=' 10
wake_idle_p95=$p95

say "detection: a burst of $BURST owner exits"
jobs_list=
for ((k = 0; k < BURST; k++)); do
	j=$((5000 + k))
	holder "burst_$k" bench_detect "SELECT finlive_mark($j, $j, 'deploy-staging')"
	jobs_list="$jobs_list${jobs_list:+,}$j"
done
wait_owners bench_detect "$BURST"
for j in ${jobs_list//,/ }; do echo "CALL bench_detect_job($j);"; done | psql_q -d bench_detect
sleep 0.5
bdef=$(psql_v -d bench_detect -c "SELECT count(*) FROM unnest(ARRAY[$jobs_list]::bigint[]) j WHERE finlive_explain('det_jobs', j)->>'action' = 'deferred'")
pids=$(psql_v -d bench_detect -c "SELECT string_agg(pid::text, ',') FROM finlive_owners WHERE job_id = ANY (ARRAY[$jobs_list]::bigint[])")
ticks0=$(psql_v -d bench_detect -c "SELECT ticks FROM finlive_stats")
IFS='|' read -r blast bfirst blog breaped <<<"$(psql_v -d bench_detect -c "SELECT last_ms, first_ms, log_ticks, reaped FROM bench_burst(ARRAY[$pids], ARRAY[$jobs_list]::bigint[])")"
sleep 0.2
ticks1=$(psql_v -d bench_detect -c "SELECT ticks FROM finlive_stats")
for p in "${holders[@]}"; do wait "$p" 2>/dev/null || true; done
holders=()
bticks=$((ticks1 - ticks0))
fig det.burst "$bticks|$(fmt "$blast" 1)|$(fmt "$bfirst" 1)|$blog|$breaped|$bdef"
goal det.burst_ticks "$bticks" '<=' 3
goal det.burst_ms "${blast:-nan}" '<=' 500

say "detection: $TRIALS trials, 100,000 other running jobs in the target"
new_db bench_detect_100k 100000
reaper_of bench_detect_100k >/dev/null
sleep 1
: >"$work/det.100k"
trials bench_detect_100k wake "$TRIALS" 1000001 "$work/det.100k"
read -r p50 p95 pmax n miss <<<"$(dstats "$work/det.100k")"
fig det.100k "$p50|$p95|$pmax|$n|$miss|$(dextra "$work/det.100k")"
fig raw.det.100k "$(raw_trials "$work/det.100k")"
goal det.100k "$p95" '<=' 10
wake_100k_p95=$p95
full_tick=$(psql_v -d bench_detect_100k -c "SELECT round(last_tick_ms::numeric, 1) FROM finlive_stats")
fig det.fulltick100k "$full_tick"

# ====================================================== 4d. idle reapers ===
say "limits: idle cost of reaping 20 databases (extension + a target each), ${IDLE_SECS}s"
t_idle=$(date +%s)
for ((k = 1; k <= 20; k++)); do new_db "$(printf 'bench_idle_%02d' $k)"; done
for ((k = 1; k <= 20; k++)); do reaper_of "$(printf 'bench_idle_%02d' $k)" >/dev/null; done
sleep 12   # every reaper past its first full tick
idle_pids() {
	psql_v -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
	            WHERE backend_type = 'finlive launcher'
	               OR (backend_type = 'finlive reaper' AND datname LIKE 'bench_idle_%')"
}
cpu_ticks() { # pids -> utime+stime summed, in clock ticks
	local p s=0 f
	for p in "$@"; do
		f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		s=$((s + $(awk '{ print $12 + $13 }' <<<"$f")))
	done
	echo $s
}
pids0=$(idle_pids)
c0=$(cpu_ticks $pids0)
s0=$(date +%s.%N)
sleep "$IDLE_SECS"
c1=$(cpu_ticks $pids0)
s1=$(date +%s.%N)
pids1=$(idle_pids)
hz=$(getconf CLK_TCK)
nproc_idle=$(wc -w <<<"$pids0")
idle_cpu_min=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", c / hz / (b - a) * 60 }')
idle_pct=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", 100 * c / hz / (b - a) }')
same_pids=yes
[ "$pids0" = "$pids1" ] || same_pids=no
fig lim.idle "$idle_cpu_min|$idle_pct|$nproc_idle|$((c1 - c0))|$hz|$same_pids"
goal lim.idle "$idle_pct" '<=' 1
fig time.idle $(($(date +%s) - t_idle))

# ============================================= 3b. the periodic reaper ===
# The same reaper with the owner-exit wake-up switched off
# (finlive.fault_injection = 'no_exit_wakeup'), at the same naptime: its
# trials run in STREAMS idle databases and STREAMS copies of the
# 100,000-job target at once (each database has its own reaper and period),
# TRIALS per variant in all.
say "detection: the periodic reaper (owner-exit wake-up off), $TRIALS trials per variant in $STREAMS databases each"
for ((k = 1; k <= STREAMS; k++)); do
	psql_q -c "CREATE DATABASE bench_per100k_$k TEMPLATE bench_detect_100k"
done
for ((k = 1; k <= STREAMS; k++)); do reaper_of "bench_per100k_$k" >/dev/null; done
set_conf finlive.fault_injection no_exit_wakeup
sleep 1
per=$(( (TRIALS + STREAMS - 1) / STREAMS ))
bg=()
for ((k = 1; k <= STREAMS; k++)); do
	: >"$work/per.idle.$k"; : >"$work/per.100k.$k"
	trials "$(printf 'bench_idle_%02d' $k)" periodic "$per" 100 "$work/per.idle.$k" &
	bg+=($!)
	trials "bench_per100k_$k" periodic "$per" 2000001 "$work/per.100k.$k" &
	bg+=($!)
done
for p in "${bg[@]}"; do wait "$p" || true; done
set_conf finlive.fault_injection ''
cat "$work"/per.idle.* >"$work/per.idle"
cat "$work"/per.100k.* >"$work/per.100k"
read -r p50 p95 pmax n miss <<<"$(dstats "$work/per.idle")"
fig det.periodic "$p50|$p95|$pmax|$n|$miss|$(dextra "$work/per.idle")"
fig raw.det.periodic "$(raw_trials "$work/per.idle")"
r=$(div "$p95" "$wake_idle_p95" 0)
fig det.ratio "$r|$p95|$wake_idle_p95"
goal det.ratio "$r" '>=' 500
read -r p50 p95 pmax n miss <<<"$(dstats "$work/per.100k")"
fig det.periodic100k "$p50|$p95|$pmax|$n|$miss|$(dextra "$work/per.100k")"
fig raw.det.periodic100k "$(raw_trials "$work/per.100k")"
r=$(div "$p95" "$wake_100k_p95" 0)
fig det.ratio100k "$r|$p95|$wake_100k_p95"
goal det.ratio100k "$r" '>=' 500
for d in $(psql_v -c "SELECT datname FROM pg_database WHERE datname LIKE 'bench_%' AND datname NOT IN ('bench_own', 'bench_reap')"); do
	psql_q -c "DROP DATABASE $d WITH (FORCE)"
done
set_conf finlive.reaper off
fig time.det $(($(date +%s) - t_det))

# ========================================= 4b. shared memory per entry ===
t_lim=$(date +%s)
say "limits: shared memory per finlive.max_owners entry"
shmem() { # -> "finlive-named anonymous total-segment" in bytes
	psql_v -F ' ' -c "SELECT sum(allocated_size) FILTER (WHERE name LIKE 'finlive%'),
	                         sum(allocated_size) FILTER (WHERE name = '<anonymous>'),
	                         sum(allocated_size)
	                    FROM pg_shmem_allocations"
}
n1=10000; n2=110000
set_conf finlive.max_owners $n1; restart
read -r named1 anon1 seg1 <<<"$(shmem)"
set_conf finlive.max_owners $n2; restart
read -r named2 anon2 seg2 <<<"$(shmem)"
psql_q -c "ALTER SYSTEM RESET finlive.max_owners"
dn=$((n2 - n1))
fig lim.shmem "$(div $((seg2 - seg1)) $dn 1)|$(div $((named2 + anon2 - named1 - anon1)) $dn 1)|$(div $((named2 - named1)) $dn 1)|$n1:$named1,$anon1,$seg1|$n2:$named2,$anon2,$seg2"

# ================================================== 4c. lock-table room ===
say "limits: locks another session can take with finlive.max_owners jobs owned, none, and without finlive"
restart
maxo=$(psql_v -c "SHOW finlive.max_owners")
psql_q -d bench_own -f "$bench/sql/lock_room.sql"
room() { psql_v -d bench_own -c "SELECT bench_lock_room()"; }
room_none=$(room)
holder room bench_own "SELECT count(finlive_mark(g)) FROM generate_series(1, $maxo) g"
wait_owners bench_own "$maxo"
room_owned=$(room)
room_owned2=$(room)
stop_holders
room_none2=$(room)
runuser -u postgres -- sed -i "s/^shared_preload_libraries = 'finlive'/#&/" "$PGDATA/postgresql.conf"
restart
room_nopre=$(room)
preloaded_nopre=$(psql_v -c "SHOW shared_preload_libraries")
runuser -u postgres -- sed -i "s/^#\(shared_preload_libraries = 'finlive'\)/\1/" "$PGDATA/postgresql.conf"
restart
r1=$(div "$room_owned" "$room_none" 3)
r2=$(div "$room_owned" "$room_nopre" 3)
fig lim.lockroom "$r1|$r2|$room_owned|$room_none|$room_nopre|$maxo|$room_owned2|$room_none2|$(psql_v -c "SHOW max_locks_per_transaction")|${preloaded_nopre:-none}"
goal lim.lockroom "$r1" '>=' 1.0
goal lim.lockroom_nopre "$r2" '>=' 1.0
fig time.limits $(($(date +%s) - t_lim))

# ============================================== profiles of missed goals ===
if [ "$BENCH_PROFILE" != none ] && { [ "$BENCH_PROFILE" = all ] || [ ${#missed[@]} -gt 0 ]; }; then
	say "profiling: ${missed[*]:-all}"
	t_prof=$(date +%s)
	want=${missed[*]}
	[ "$BENCH_PROFILE" = all ] && want=all
	FINLIVE_PROFILE_WORK=$work FINLIVE_PROFILE_FIGS=$figs FINLIVE_PROFILE_LOG=$CLUSTER_DIR/server.log \
		bash "$bench/profile.sh" "$out/profile-$PG_MAJOR.md" $want || say "profiling failed (see above)"
	fig time.profile $(($(date +%s) - t_prof))
fi

elapsed=$(($(date +%s) - started))
fig meta.wall "$elapsed"
say "done in ${elapsed} s; figures in $figs"
results=${FINLIVE_BENCH_RESULTS:-$bench/results.md}
bash "$bench/report.sh" "$figs" >"$work/results.md"
cat "$work/results.md"
[ "$results" = - ] || cp "$work/results.md" "$results"
[ -z "${FINLIVE_BENCH_OUT:-}" ] || cp "$work/results.md" "$out/results-$PG_MAJOR.md"
