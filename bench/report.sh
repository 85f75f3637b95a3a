#!/usr/bin/env bash
# Renders bench/results.md from the figures of one or more runs of
# bench/run.sh (figures-<major>.tsv, one per PostgreSQL version), side by
# side, one column per version.  Nothing but those files goes in: every
# figure printed comes from the run that wrote it.  A profile-<major>.md
# beside a figures file (bench/profile.sh, run for missed goals) is
# appended.
#
#   bash bench/report.sh DIR/figures-15.tsv [DIR/figures-17.tsv ...] >results.md
#   bash bench/report.sh --goals FIGURES... >goals.md
#
# --goals prints only the stamp of each run and one row per goal, met or
# missed, with its figure: what bench/publish.sh puts into the README and
# doc/benchmarks.md.
set -euo pipefail
mode=full
[ "${1:-}" = --goals ] && { mode=goals; shift; }
[ $# -gt 0 ] || { echo "usage: report.sh [--goals] figures-N.tsv..." >&2; exit 2; }

declare -A F
vers=()
files=()
for f in "$@"; do
	[ -s "$f" ] || { echo "report: $f is empty or missing" >&2; continue; }
	v=$(awk -F'\t' '$1 == "meta.major" { print $2 }' "$f")
	[ -n "$v" ] || { echo "report: $f has no meta.major" >&2; continue; }
	vers+=("$v")
	files+=("$f")
	while IFS=$'\t' read -r k val; do F[$v:$k]=$val; done <"$f"
done
[ ${#vers[@]} -gt 0 ] || { echo "report: no figures" >&2; exit 1; }

get() { echo "${F[$1:$2]:-}"; }
# field N (1-based) of a |-separated figure
fld() { local IFS='|' a; read -r -a a <<<"$(get "$1" "$2")"; echo "${a[$(($3 - 1))]:-}"; }
ver() { # v key...: the verdicts of these goals, "met" / "**MISSED**"
	local v=$1 k r= x
	shift
	for k in "$@"; do
		x=$(get "$v" "verdict.$k")
		[ -n "$x" ] || x="n/a"
		[ "$x" = MISSED ] && x="**MISSED**"
		r="$r${r:+, }$x"
	done
	echo "$r"
}
s_of() { awk -v a="$1" 'BEGIN { if (a == "" || a == "nan") print "nan"; else printf "%.2f", a / 1000 }'; }

# cell V KEY: one version's figure for a row, as text
cell() {
	local v=$1 k=$2
	[ -n "$(get "$v" "$k")" ] || [ "$k" = det.burst_goal ] || { echo "—"; return; }
	case $k in
	own.mark_adv | own.stage_adv)
		echo "**$(fld "$v" "$k" 1)×** ($(fld "$v" "$k" 4) vs $(fld "$v" "$k" 5) TPS; rounds $(fld "$v" "$k" 2)–$(fld "$v" "$k" 3)) $(ver "$v" "$k")" ;;
	own.mark_tbl | own.mark_tblu)
		echo "$(fld "$v" "$k" 1)× ($(fld "$v" "$k" 4) vs $(fld "$v" "$k" 5) TPS; rounds $(fld "$v" "$k" 2)–$(fld "$v" "$k" 3))" ;;
	own.isact)
		echo "**$(fld "$v" "$k" 1)×** ($(fld "$v" "$k" 4) vs $(fld "$v" "$k" 5) TPS; rounds $(fld "$v" "$k" 2)–$(fld "$v" "$k" 3); $(fld "$v" "$k" 6) owned) $(ver "$v" "$k")" ;;
	own.floor2)
		echo "$(fld "$v" "$k" 1) TPS (mark+clear at $(fld "$v" "$k" 2) of it, advisory pair at $(fld "$v" "$k" 3))" ;;
	own.floor1)
		echo "$(fld "$v" "$k" 1) TPS (\`finlive_is_active\` at $(fld "$v" "$k" 2) of it)" ;;
	tick.1m | tick.100k)
		echo "finlive $(fld "$v" "$k" 2) ms vs $(fld "$v" "$k" 3) ms: **$(fld "$v" "$k" 1)×** faster (as first written: $(fld "$v" "$k" 5) ms, $(fld "$v" "$k" 4)×)" ;;
	tick.scale)
		echo "**$(fld "$v" "$k" 1)×** (PL/pgSQL tuned $(fld "$v" "$k" 2)×, as first written $(fld "$v" "$k" 3)×) $(ver "$v" "$k")" ;;
	tick.work | reap.work)
		echo "$(fld "$v" "$k" 1): $(fld "$v" "$k" 2)" ;;
	tick.check)
		echo "$(fld "$v" "$k" 1)" ;;
	reap.noiso)
		echo "finlive $(fld "$v" "$k" 2) ms vs $(fld "$v" "$k" 3) ms: **$(fld "$v" "$k" 1)×** $(ver "$v" "$k")" ;;
	reap.iso)
		echo "finlive $(fld "$v" "$k" 2) ms vs $(fld "$v" "$k" 3) ms: $(fld "$v" "$k" 1)×" ;;
	reap.isocost)
		echo "$(fld "$v" "$k" 1)× ($(fld "$v" "$k" 2) vs $(fld "$v" "$k" 3) ms: $(fld "$v" "$k" 4) ms per 1,000 jobs)" ;;
	det.idle | det.100k)
		echo "p50 $(fld "$v" "$k" 1), **p95 $(fld "$v" "$k" 2)**, max $(fld "$v" "$k" 3) ms ($(fld "$v" "$k" 4) trials, $(fld "$v" "$k" 5) missed; p50s from the signal: reaping transaction started $(fld "$v" "$k" 6), row changed $(fld "$v" "$k" 10), then visible $(fld "$v" "$k" 11) ms later (p95 $(fld "$v" "$k" 12)); $(fld "$v" "$k" 7) µs per poll) $(ver "$v" "$k")" ;;
	det.periodic | det.periodic100k)
		echo "p50 $(s_of "$(fld "$v" "$k" 1)"), p95 $(s_of "$(fld "$v" "$k" 2)"), max $(s_of "$(fld "$v" "$k" 3)") s ($(fld "$v" "$k" 4) trials, $(fld "$v" "$k" 5) missed)" ;;
	det.ratio | det.ratio100k)
		echo "**$(fld "$v" "$k" 1)×** ($(s_of "$(fld "$v" "$k" 2)") s / $(fld "$v" "$k" 3) ms) $(ver "$v" "$k")" ;;
	det.burst)
		echo "**$(fld "$v" "$k" 1) ticks**, last reap after **$(fld "$v" "$k" 2) ms** (first $(fld "$v" "$k" 3) ms; $(fld "$v" "$k" 5) reaped, in $(fld "$v" "$k" 4) reaping transactions) $(ver "$v" det.burst_ticks det.burst_ms)" ;;
	lim.wal)
		echo "the tick's own WAL **$(fld "$v" "$k" 9) B** first after CHECKPOINT, **$(fld "$v" "$k" 10) B** later (transaction id: $(fld "$v" "$k" 11) / $(fld "$v" "$k" 12)); WAL position around it $(fld "$v" "$k" 1) B, later max $(fld "$v" "$k" 2) B (each later tick, position/own: $(fld "$v" "$k" 8))$(r=$(fld "$v" "$k" 7); [ -z "$r" ] || echo ", records: $r"); pages dirtied $(fld "$v" "$k" 3) / $(fld "$v" "$k" 4); $(fld "$v" "$k" 5) defers $(ver "$v" lim.wal_first lim.wal_later lim.dirtied)" ;;
	lim.shmem)
		echo "**$(fld "$v" "$k" 1) B** of segment (allocations $(fld "$v" "$k" 2) B, of which 'finlive%'-named $(fld "$v" "$k" 3) B)" ;;
	lim.lockroom)
		echo "**$(fld "$v" "$k" 1)** ($(fld "$v" "$k" 3) locks with $(fld "$v" "$k" 6) owned / $(fld "$v" "$k" 4) with none) $(ver "$v" lim.lockroom)" ;;
	lim.lockroom_nopre)
		;;
	lim.idle)
		echo "**$(fld "$v" "$k" 2)%** of one core ($(fld "$v" "$k" 1) CPU s per minute, $(fld "$v" "$k" 3) processes) $(ver "$v" "$k")" ;;
	*) get "$v" "$k" ;;
	esac
}
cell_nopre() {
	local v=$1 k=lim.lockroom
	[ -n "$(get "$v" "$k")" ] || { echo "—"; return; }
	echo "**$(fld "$v" "$k" 2)** ($(fld "$v" "$k" 3) locks with $(fld "$v" "$k" 6) owned / $(fld "$v" "$k" 5) without finlive) $(ver "$v" lim.lockroom_nopre)"
}

# the rows: key | group | what | against | goal
rows=$(cat <<'EOF'
own.mark_adv|1|take + release ownership: `finlive_mark` + `finlive_clear` (TPS)|`pg_try_advisory_lock` + `pg_advisory_unlock`|≥ 0.9×
own.stage_adv|1|the same, every call naming a new stage|the advisory pair|≥ 0.9×
own.mark_tbl|1|take + release ownership|an ownership row in a logged table (INSERT … ON CONFLICT, DELETE)|
own.mark_tblu|1|take + release ownership|the same row in an UNLOGGED table|
own.isact|1|`finlive_is_active`, 10,000 jobs owned by another session (TPS)|a `pg_locks` probe|≥ 100×
own.floor2|1|floor: `SELECT 1; SELECT 1` (two round trips, like every take + release script)||
own.floor1|1|floor: `SELECT 1`||
tick.1m|2|one tick, 10,000 running (1,000 owned by another session, deferred), 1,000,000-row table (ms, median)|the PL/pgSQL reaper, tuned|
tick.100k|2|the same, 100,000-row table|the PL/pgSQL reaper, tuned|
tick.scale|2|tick(1,000,000 rows) / tick(100,000 rows)||≤ 1.1
tick.work|2|work per tick, every reaper and table (must match)||
tick.check|2|the comparators decide as finlive (10 scenario jobs, every tier and outcome)||
reap.noiso|2|a tick that reaps 1,000 jobs (update, `on_reap` row, NOTIFY, log row each; ms, median)|the same writes in a PL/pgSQL loop, no isolation|≤ 1.5×
reap.iso|2|the same|the PL/pgSQL loop with BEGIN … EXCEPTION per job|
reap.isocost|2|the cost of per-job isolation in PL/pgSQL|loop with / without BEGIN … EXCEPTION|
reap.work|2|writes per reaping tick, every reaper (hook rows, log rows, jobs done; must be 1000 each)||
det.idle|3|owner death → job's new status, idle target, default naptime|| p95 ≤ 10 ms
det.100k|3|the same, 100,000 other running jobs in the target||p95 ≤ 10 ms
det.periodic|3|the periodic reaper (owner-exit wake-up off), idle target, same naptime|||
det.periodic100k|3|the periodic reaper, 100,000 other running jobs|||
det.ratio|3|detection p95, periodic / wake-up, idle||≥ 500×
det.ratio100k|3|detection p95, periodic / wake-up, 100,000 running||≥ 500×
det.burst|3|a burst of 40 owner exits: ticks used (`finlive_stats.ticks`), time to the last reap||≤ 3 ticks, ≤ 500 ms (issue 12)
lim.wal|4|WAL written by a tick that only defers 1,000 owned jobs||0 B, 0 pages dirtied
lim.shmem|4|shared memory per `finlive.max_owners` entry||
lim.lockroom|4|locks another session can take with `finlive.max_owners` jobs owned / with none owned||1.0
lim.lockroom_nopre|4|the same / the same server without finlive preloaded||1.0
lim.idle|4|idle cost of 20 databases (extension + a target each): all reapers and the launcher, default naptime||≤ 1% of one core
EOF
)

v0=${vers[0]}

# One row per goal: verdict key | the goal in words | figure key:field:unit
goals_table() {
	local k what spec v x
	echo "| goal | $(for v in "${vers[@]}"; do printf 'PostgreSQL %s | ' "$v"; done)"
	echo "|---|$(for v in "${vers[@]}"; do printf -- '---|'; done)"
	while IFS='|' read -r k what spec; do
		printf '| %s | ' "$what"
		for v in "${vers[@]}"; do
			x=$(get "$v" "verdict.$k")
			[ -n "$x" ] || x="n/a"
			[ "$x" = MISSED ] && x="**MISSED**"
			printf '%s%s %s | ' "$(fld "$v" "${spec%%:*}" "$(echo "$spec" | cut -d: -f2)")" "$(echo "$spec" | cut -d: -f3-)" "$x"
		done
		echo
	done <<'GOALS'
own.mark_adv|mark + clear ≥ 0.9× the advisory-lock pair|own.mark_adv:1:×
own.stage_adv|the same with a new stage every call ≥ 0.9×|own.stage_adv:1:×
own.isact|`finlive_is_active` ≥ 100× a `pg_locks` probe (10,000 owned)|own.isact:1:×
tick.scale|tick(1,000,000 rows) / tick(100,000 rows) ≤ 1.1|tick.scale:1:×
reap.noiso|reaping 1,000 jobs ≤ 1.5× the same writes without isolation|reap.noiso:1:×
det.idle|detection p95 ≤ 10 ms, idle|det.idle:2: ms
det.100k|detection p95 ≤ 10 ms, 100,000 other running jobs|det.100k:2: ms
det.ratio|≥ 500× sooner than the measured periodic reaper, idle|det.ratio:1:×
det.ratio100k|≥ 500× sooner than the periodic reaper, 100,000 running|det.ratio100k:1:×
det.burst_ticks|a burst of 40 owner exits reaped in ≤ 3 ticks|det.burst:1: ticks
det.burst_ms|… the last of them within 500 ms|det.burst:2: ms
lim.wal_first|WAL of a tick that only defers 1,000 jobs, first after a checkpoint: 0|lim.wal:9: B
lim.wal_later|… every later such tick: 0|lim.wal:10: B
lim.dirtied|… pages that tick dirties: 0|lim.wal:3: pages
lim.lockroom|locks another session can take, `max_owners` owned / none owned: 1.0|lim.lockroom:1:
lim.lockroom_nopre|… `max_owners` owned / the same server without finlive: ≥ 1.0|lim.lockroom:2:
lim.idle|20 idle databases ≤ 1% of one core|lim.idle:2:%
GOALS
}

if [ "$mode" = goals ]; then
	echo "One run of \`bash bench/matrix.sh\` on $(get "$v0" meta.cpu), $(get "$v0" meta.cores) cores, $(get "$v0" meta.mem) RAM, each version in its own Debian root, one after another:"
	echo
	for v in "${vers[@]}"; do
		d=$(get "$v" meta.dirty)
		echo "- PostgreSQL $(get "$v" meta.pg): finlive \`$(get "$v" meta.commit | cut -c1-12)\`${d:+ + $d}, $(get "$v" meta.date), $(get "$v" meta.os), $(get "$v" meta.wall) s, load average at start $(get "$v" meta.loadavg)"
	done
	echo
	goals_table
	echo
	for i in "${!vers[@]}"; do
		awk -F'\t' -v v="${vers[$i]}" '$1 ~ /^verdict\./ { n++; if ($2 == "met") m++ }
			END { printf "- PostgreSQL %s: %d of %d goals met.\n", v, m, n }' "${files[$i]}"
	done
	exit 0
fi

echo "## Benchmark results"
echo
by=run.sh
[ ${#vers[@]} -gt 1 ] && by=matrix.sh
echo "Written by \`bash bench/$by\` from the figures of the run(s) below and nothing else."
echo
echo "| | $(for v in "${vers[@]}"; do printf 'PostgreSQL %s | ' "$v"; done)"
echo "|---|$(for v in "${vers[@]}"; do printf -- '---|'; done)"
for m in "pg:server" "commit:finlive" "date:run at" "os:system" "wall:wall time" "knobs:durations" "loadavg:load average at start"; do
	k=${m%%:*}
	printf '| %s | ' "${m#*:}"
	for v in "${vers[@]}"; do
		x=$(get "$v" "meta.$k")
		case $k in
		commit) d=$(get "$v" meta.dirty); x="\`${x:0:12}\`${d:+ + $d}" ;;
		wall) d=$(get "$v" time.profile); x="$x s (ownership $(get "$v" time.own) s, ticks $(get "$v" time.ticks) s, detection $(get "$v" time.det) s, idle $(get "$v" time.idle) s, limits $(get "$v" time.limits) s${d:+, profiles $d s})" ;;
		knobs) x="\`$x\`" ;;
		esac
		printf '%s | ' "$x"
	done
	echo
done
echo
echo "Machine: $(get "$v0" meta.cpu), $(get "$v0" meta.cores) cores, $(get "$v0" meta.mem) RAM (the host's; each version ran in its own Debian root on it, one after another)."
echo
echo "| # | what | against | goal | $(for v in "${vers[@]}"; do printf '%s | ' "$v"; done)"
echo "|---|---|---|---|$(for v in "${vers[@]}"; do printf -- '---|'; done)"
while IFS='|' read -r k g what against goalt; do
	printf '| %s | %s | %s | %s | ' "$g" "$what" "$against" "$goalt"
	for v in "${vers[@]}"; do
		if [ "$k" = lim.lockroom_nopre ]; then printf '%s | ' "$(cell_nopre "$v")"; else printf '%s | ' "$(cell "$v" "$k")"; fi
	done
	echo
done <<<"$rows"
echo
echo "### Goals"
echo
for i in "${!vers[@]}"; do
	awk -F'\t' -v v="${vers[$i]}" '$1 ~ /^verdict\./ { n++; k = substr($1, 9); if ($2 == "met") m++; else miss = miss (miss == "" ? "" : " ") k }
		END { printf "- PostgreSQL %s: %d of %d goals met%s\n", v, m, n, (miss == "" ? "" : "; missed: `" miss "`") }' "${files[$i]}"
done
cat <<EOF

### How each row is measured

- Ownership: pgbench \`-M prepared -c CLIENTS -j 2 -T SECS\` against a database with the extension; every
  variant runs once per round, rounds interleaved (order reversed every other round); a figure is the median TPS
  over rounds, a ratio the median of the ratios within each round (range in brackets). The take + release
  scripts are two statements (two round trips); the table rows commit each statement. \`finlive_is_active\` and
  the \`pg_locks\` probe ask about a random job of 1..20,000 while another session owns 1..10,000.
- Ticks: \`bench/sql/jobs_setup.sql\` (10,000 running jobs among the newest 100,000; 1,000 of them past the
  finalize grace in the guarded stage, owned by another session, so deferred; 9,000 within every grace).
  Each tick runs in a transaction of its own and is timed inside the server from before the tick to after its
  COMMIT (\`bench/sql/ticks.sql\`); one warm-up round, then rounds interleaved over reapers and tables. The
  comparators (\`bench/sql/reaper_plpgsql.sql\`) do what the reaper must do now: read and decide the candidates
  without row locks, lock only a job to reap (FOR UPDATE SKIP LOCKED), re-read and decide it again under the
  lock, update it, call the hook, NOTIFY, log; "tuned" shapes the plan (LATERAL … OFFSET 0 index probes, hashed
  \`pg_locks\` set, \`jit = off\`), "as first written" uses plain joins.
- Reaping 1,000 jobs: \`bench/sql/reap_setup.sql\` (100,000 jobs, 1,000 running past the grace in an unguarded
  stage, an \`on_reap\` hook that inserts a row): every tick reaps all 1,000 (Tier-2, done); between ticks the jobs
  are put back and the tables vacuumed, outside the timing. The comparator is the same PL/pgSQL reaper, its
  per-job work (lock, re-read, decide, update, the same hook, \`pg_notify\` on the same channel, a log row with
  \`finlive_reap_log\`'s columns) run with and without a BEGIN … EXCEPTION block per job.
- Detection: in a database of its own (its own reaper at the default naptime), a job past the grace in the
  guarded stage owned by a live session (deferred: \`finlive_explain\` says so first), its owner terminated
  after QUIET_MS without any owner exit (an isolated death: exits within 100 ms of an exit tick are gathered
  into the next tick by design, which the burst row measures); \`bench_detect()\`
  (\`bench/sql/detect_setup.sql\`) reads \`clock_timestamp()\`, calls \`pg_terminate_backend(owner)\` and polls
  the job's status inside the server continuously (a few µs per poll) until it changes. The periodic reaper is
  the same reaper with \`finlive.fault_injection = 'no_exit_wakeup'\` (owner exits ignored), same naptime; its
  trials run in several databases at once (each has its own reaper and period), terminate the owner at a
  random moment of the period, and poll every 1 ms. The burst: 40 sessions own a job each, one function
  terminates all 40 and polls until none is running; ticks = \`finlive_stats.ticks\` after − before.
- WAL: \`pg_current_wal_lsn()\` before and after a tick (its own transaction) in the 100,000-row tick database
  (1,000 deferred, 9,000 left alone), the first right after a CHECKPOINT, then 5 more; pages dirtied from
  EXPLAIN (ANALYZE, BUFFERS) of the same tick; non-zero WAL is broken down by \`pg_walinspect\`.
- Shared memory: \`pg_shmem_allocations\` at \`finlive.max_owners\` = 10,000 and 110,000 (a restart each),
  the growth divided by 100,000: of the whole segment (finlive also sizes the lock table for its locks), and of
  the allocations named 'finlive%' plus \`<anonymous>\` (where shared hash entries live).
- Lock room: a session takes \`pg_advisory_xact_lock\` locks until "out of shared memory" and counts them
  (\`bench/sql/lock_room.sql\`), with \`finlive.max_owners\` jobs owned by another session, with none, and after
  a restart without finlive in \`shared_preload_libraries\`; default \`max_locks_per_transaction\` and
  \`max_connections\`.
- Idle cost: 20 databases, each with the extension and a registered target, reaped at the default naptime;
  utime + stime (\`/proc/<pid>/stat\`) of their 20 reapers and the launcher over IDLE_SECS seconds, after every
  reaper has made its first tick.
EOF
for i in "${!vers[@]}"; do
	v=${vers[$i]}
	f=${files[$i]}
	echo
	echo "<details><summary>PostgreSQL $v: raw figures of this run</summary>"
	echo
	echo '```'
	awk -F'\t' '$1 ~ /^(raw|det|lim|tick|reap|own)\./ { printf "%-26s %s\n", $1, $2 }' "$f"
	echo '```'
	echo
	echo "</details>"
	p=$(dirname "$f")/profile-$v.md
	if [ -s "$p" ]; then
		echo
		echo "#### PostgreSQL $v: where the time goes (profiles of the missed goals)"
		echo
		cat "$p"
	fi
done
