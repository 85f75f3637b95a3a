#!/usr/bin/env bash
# Where the time goes, for the goals a run of bench/run.sh missed.  Called
# by run.sh at the end of its run, against its cluster (PGHOST, PGPORT,
# PGDATA, PGBIN set; FINLIVE_PROFILE_LOG = its server log), with the keys
# of the missed goals; writes markdown to OUT.
#
#   bash bench/profile.sh OUT.md GOAL... | all
#
# CPU goals (ownership, is_active, the reaping tick) are profiled with perf
# when `perf stat -e instructions true` counts instructions here, else with
# valgrind --tool=callgrind on a backend: the cluster is stopped and one
# backend runs the scenario in single-user mode (same data directory, same
# private build preloaded), counting only inside the SQL functions compared
# (--toggle-collect), so a figure is instructions per call.  Detection is
# not CPU-bound: its profile is a breakdown of the delay (to the reaping
# transaction's start, to the visible commit) and the same trials with the
# commit's WAL flush taken out (synchronous_commit = off), which shows how
# much of the delay is the flush.  The lock-room goal is explained from the
# run's own figures.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=$here/bench
outmd=$1
shift
goals=" $* "
[ "$goals" = " all " ] && goals=" own.mark_adv own.stage_adv own.isact tick.scale reap.noiso det.idle det.100k lim.lockroom "
work=${FINLIVE_PROFILE_WORK:-$(mktemp -d)}
figs=${FINLIVE_PROFILE_FIGS:-}
dir=$work/profile
mkdir -p "$dir"
chown postgres: "$dir"
: >"$outmd"
md() { printf '%s\n' "$*" >>"$outmd"; }
want() { local g; for g in "$@"; do [[ $goals == *" $g "* ]] && return 0; done; return 1; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_v() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }
getfig() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$figs" 2>/dev/null; }
fld() { local IFS='|' a; read -r -a a <<<"$(getfig "$1")"; echo "${a[$(($2 - 1))]:-}"; }

tool=callgrind
if command -v perf >/dev/null 2>&1 && perf stat -e instructions true 2>&1 | grep -qE '^ *[0-9,.]+ +instructions'; then
	tool=perf
fi

# ----------------------------------------------------------- detection ---
if want det.idle det.100k det.ratio det.ratio100k; then
	md "**Detection** (owner death to the job's new status): where the delay goes."
	md
	n=${PROFILE_TRIALS:-10}
	psql_q -c "CREATE DATABASE prof_detect"
	psql_q -d prof_detect -c "CREATE EXTENSION finlive"
	psql_q -d prof_detect -f "$bench/sql/detect_setup.sql" >/dev/null
	psql_q -c "ALTER SYSTEM SET finlive.reaper = on" -c "ALTER SYSTEM SET finlive.restart_grace = 0" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 1 200); do
		[ -n "$(psql_v -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'finlive reaper' AND datname = 'prof_detect'")" ] && break
		sleep 0.05
	done
	sleep 1
	run_trials() { # label first-job -> lines seen|log
		local k job owner sh
		for ((k = 0; k < n; k++)); do
			job=$(($2 + k))
			psql -X -q -d prof_detect -c "SELECT finlive_mark($job, $job, 'deploy-staging')" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
			sh=$!
			owner=
			for _ in $(seq 1 500); do
				owner=$(psql_v -d prof_detect -c "SELECT pid FROM finlive_owners WHERE job_id = $job")
				[ -n "$owner" ] && break
				sleep 0.01
			done
			psql_q -d prof_detect -c "CALL bench_detect_job($job)"
			sleep 0.5   # an isolated death: no owner exit in the last 0.5 s
			psql_v -d prof_detect -c "SELECT seen_ms || '|' || log_ms FROM bench_detect($owner, $job, 0)"
			wait "$sh" 2>/dev/null || true
		done
	}
	q() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { if (!NR) { print "nan"; exit } x = 1 + p * (NR - 1); i = int(x); f = x - i; printf "%.2f", (i < NR) ? a[i] + f * (a[i + 1] - a[i]) : a[i] }'; }
	summary() { # file -> "seen p50 / p95; tick start p50; start to visible p50"
		echo "seen p50 $(cut -d'|' -f1 "$1" | q 0.5) ms, p95 $(cut -d'|' -f1 "$1" | q 0.95) ms; reaping transaction started after p50 $(cut -d'|' -f2 "$1" | q 0.5) ms; from its start to visible p50 $(awk -F'|' '{ print $1 - $2 }' "$1" | q 0.5) ms"
	}
	run_trials on 1 >"$dir/det.on"
	psql_q -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	run_trials off 1001 >"$dir/det.off"
	psql_q -c "ALTER SYSTEM RESET synchronous_commit" -c "SELECT pg_reload_conf()" >/dev/null
	# what one durable commit costs here: a one-row INSERT, one client
	psql_q -d prof_detect -c "CREATE TABLE prof_commit (x int)"
	echo "INSERT INTO prof_commit VALUES (1);" >"$dir/commit.sql"
	commit_ms=$(pgbench -n -c 1 -T 2 -d prof_detect -f "$dir/commit.sql" 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
	md "- $n trials as in the run (synchronous_commit = on): $(summary "$dir/det.on")."
	md "- the same $n trials with synchronous_commit = off (the reap's commit not waiting for its WAL flush): $(summary "$dir/det.off")."
	md "- one durable commit of a one-row INSERT on this machine (pgbench, 1 client): ${commit_ms:-nan} ms on average."
	md "- the periodic full tick of the 100,000-job target in the run took $(getfig det.fulltick100k) ms (\`finlive_stats.last_tick_ms\`)."
	md
	md "Reading: the reaping transaction starts within the \"started after\" figure of the owner's termination (signal delivery, the owner's exit, the reaper's wake-up); the rest, up to the moment another session sees the new status, is the reap itself and its commit, which with synchronous_commit = on waits for the WAL flush."
	md
	psql_q -c "DROP DATABASE prof_detect WITH (FORCE)"
	psql_q -c "ALTER SYSTEM SET finlive.reaper = off" -c "SELECT pg_reload_conf()" >/dev/null
fi

# ------------------------------------------------------- tick scaling ---
if want tick.scale && [ -n "$figs" ]; then
	md "**Tick, 1,000,000 rows against 100,000**: tick(1M)/tick(100k) = $(fld tick.scale 1) for finlive; the tuned PL/pgSQL reaper doing the same work: $(fld tick.scale 2), as first written $(fld tick.scale 3). One more finlive tick at each size under auto_explain (nested statements, ANALYZE, BUFFERS), the slowest statements of the tick (ms | shared buffer hits | statement):"
	md
	for sz in 1m 100k; do
		md "- $sz rows:"
		md '  ```'
		getfig "prof.tick$sz" | tr ';' '\n' | grep . | sed 's/^/  /' >>"$outmd" || true
		md '  ```'
	done
	md
fi

# ---------------------------------------------------------- lock room ---
if want lim.lockroom lim.lockroom_nopre && [ -n "$figs" ]; then
	owned=$(fld lim.lockroom 3); none=$(fld lim.lockroom 4); nopre=$(fld lim.lockroom 5); maxo=$(fld lim.lockroom 6)
	md "**Lock room**: another session could take $none locks with no job owned, $owned with $maxo owned, $nopre on the same server without finlive preloaded (max_locks_per_transaction $(fld lim.lockroom 9))."
	md "finlive sizes the lock table for finlive.max_owners more locks ($none − $nopre = $((none - nopre)) more locks with none owned), but its own locks live in the same shared table: each owned job takes one LOCK and one PROCLOCK entry of it, so with $maxo owned the others get $((none - owned)) fewer ($((none - owned)) of $maxo owned). The room finlive adds is shared, not reserved: with every owner slot in use the rest of the server has $((owned - nopre)) more locks than without finlive, and $((none - owned)) fewer than with none owned."
	md
fi

# ------------------------------------------------------ CPU: callgrind ---
cpu=()
want own.mark_adv own.stage_adv && cpu+=(mark_clear mark_clear_stage advisory_pair)
want own.isact && cpu+=(is_active pg_locks_probe)
want reap.noiso reap.iso && psql_v -c "SELECT 1 FROM pg_database WHERE datname = 'bench_reap'" | grep -q 1 && cpu+=(reap_finlive reap_noiso)
[ ${#cpu[@]} -gt 0 ] || exit 0

# scenario -> database, toggled functions, statements (one per line)
scenario() {
	case $1 in
	mark_clear) echo "bench_own|finlive_mark finlive_clear|SELECT count(*) FROM generate_series(1, 10000) g WHERE CASE WHEN finlive_mark(g) IS NOT NULL THEN finlive_clear(g) END;" ;;
	mark_clear_stage) echo "bench_own|finlive_mark finlive_clear|SELECT count(*) FROM generate_series(1, 10000) g WHERE CASE WHEN finlive_mark(g, g, 'stage-' || g) IS NOT NULL THEN finlive_clear(g) END;" ;;
	advisory_pair) echo "bench_own|pg_try_advisory_lock_int8 pg_advisory_unlock_int8|SELECT count(*) FROM generate_series(1, 10000) g WHERE CASE WHEN pg_try_advisory_lock(g) THEN pg_advisory_unlock(g) END;" ;;
	is_active) echo "bench_own|finlive_is_active|SELECT count(finlive_mark(g)) FROM generate_series(1, 10000) g;
SELECT count(*) FROM generate_series(1, 10000) g WHERE finlive_is_active(g * 2);" ;;
	pg_locks_probe) echo "bench_own|pg_lock_status|SELECT count(finlive_mark(g)) FROM generate_series(1, 10000) g;
SELECT count(*) FROM generate_series(1, 100) g WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 7966 AND l.granted AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()) AND l.classid = ((g * 2)::bigint >> 32)::oid AND l.objid = ((g * 2)::bigint & 4294967295)::oid);" ;;
	reap_finlive) echo "bench_reap|ExecMakeTableFunctionResult|CALL bench_reap_reset();
SELECT count(*) FROM finlive_reap_once();" ;;
	reap_noiso) echo "bench_reap|ExecMakeTableFunctionResult|CALL bench_reap_reset();
SELECT count(*) FROM plpgsql_reap_once(false);" ;;
	esac
}
# the function lines of callgrind_annotate, shortened: "Ir (share) function [object]"
top_lines() {
	grep -E '^ *[0-9,]+ \( *[0-9.]+%\)  ' | grep -v 'PROGRAM TOTALS' | head -"$1" |
		sed -E 's/\?\?\?://; s#\[/[^]]*/([^]/]*)\]#[\1]#; s#/[^ ]*/src/src/#src/#; s/^/  /' || true
}
calls_of() { case $1 in is_active | mark_clear* | advisory_pair) echo 10000 ;; pg_locks_probe) echo 100 ;; reap_*) echo 1000 ;; esac; }

md "**CPU profiles** ($tool; a backend in single-user mode on the run's data directory, counting only inside the functions named, per call):"
md
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
for s in "${cpu[@]}"; do
	IFS='|' read -r db fns sql <<<"$(scenario "$s" | head -1)"
	rest=$(scenario "$s" | tail -n +2)
	toggles=()
	for f in $fns; do toggles+=("--toggle-collect=$f"); done
	{ echo "$sql"; [ -z "$rest" ] || echo "$rest"; } >"$dir/$s.sql"
	runuser -u postgres -- valgrind --tool=callgrind "${toggles[@]}" --callgrind-out-file="$dir/cg.$s" \
		"$PGBIN/postgres" --single -D "$PGDATA" "$db" <"$dir/$s.sql" >"$dir/$s.log" 2>&1 || true
	total=$(sed -n 's/^summary: *//p' "$dir/cg.$s" 2>/dev/null || echo nan)
	calls=$(calls_of "$s")
	per=$(awk -v t="$total" -v c="$calls" 'BEGIN { if (t == "nan" || t == "") print "nan"; else printf "%.0f", t / c }')
	md "- \`$s\` ($fns): $per instructions per call (${calls} calls); the functions that take them (self cost, top 8):"
	md '  ```'
	callgrind_annotate --threshold=100 "$dir/cg.$s" 2>/dev/null | top_lines 8 >>"$outmd" || true
	md '  ```'
	md "  and inclusive (with what they call): finlive's own functions, then the server's below the entry point (top 10 each):"
	md '  ```'
	callgrind_annotate --inclusive=yes --threshold=100 "$dir/cg.$s" 2>/dev/null | top_lines 400 >"$dir/$s.incl" || true
	{ grep 'finlive\.so' "$dir/$s.incl" | head -10
	  grep -v 'finlive\.so' "$dir/$s.incl" | grep -v '(100\.0%)' | grep -v ' 0x[0-9a-f]*' | grep -vE '\([0-9]{3}\.[0-9]+%\)' | head -10; } >>"$outmd" || true
	md '  ```'
done
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "${FINLIVE_PROFILE_LOG:-$dir/server.log}" -w start >/dev/null
md
