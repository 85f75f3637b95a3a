#!/usr/bin/env bash
# bench/run.sh on every PostgreSQL version Debian packages, each in a fresh
# Debian root of its own (test/roots.sh: 15 bookworm, 17 trixie, 18 sid,
# 19 experimental), one after another so that no two measure at once, and
# bench/results.md written from the figures of those runs side by side.
#
#   bash bench/matrix.sh [VERSION...]     # as root; default: 15 17 18 19
#
# The tree is copied once at the start (the same tree for every version,
# whatever is committed meanwhile); the roots are created first (two at a
# time, before anything is measured), then each runs bench/run.sh; the
# commit under test is taken here (the roots get the tree without .git)
# and passed in.  At the end the goals of the run go into the README and
# doc/benchmarks.md (bench/publish.sh).  Every knob of
# bench/run.sh (ROUNDS, SECS, TRIALS, ...) is passed on.  The figures,
# each version's own results and server log are kept in bench/out/ (not
# committed).  A version whose run fails is left out of the table, and the
# script says so and exits 1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(15 17 18 19)
out=$here/bench/out
rm -rf "$out"
mkdir -p "$out"
started=$(date +%s)
say() { printf '[matrix %4ds] %s\n' $(($(date +%s) - started)) "$*" >&2; }

# The tree under test, copied once now: others may commit while the
# versions run one after another, and each root must get the same tree,
# the one the stamp names (the tracked files as they are in the working
# tree, and new files not ignored).
snap=$(mktemp -d /var/tmp/finlive-bench-tree.XXXXXX)
trap 'rm -rf "$snap"' EXIT
commit=$(git -C "$here" rev-parse HEAD)
dirty=$(git -C "$here" status --porcelain -- src Makefile finlive.control 'finlive--*.sql' | grep -q . && echo "uncommitted changes in src" || true)
git -C "$here" ls-files -z --cached --others --exclude-standard |
	(cd "$here" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
	tar -C "$here" --null --no-recursion -T - -cf - | tar -C "$snap" -xf -
chmod 755 "$snap"
export FINLIVE_BENCH_COMMIT=$commit FINLIVE_BENCH_DIRTY=$dirty
export FINLIVE_ROOT_ENV="ROUNDS SECS CLIENTS TICKS REAPS TRIALS STREAMS QUIET_MS IDLE_SECS BURST BENCH_PROFILE PROFILE_TRIALS"
base=${FINLIVE_ROOT_BASE:-/var/tmp/finlive-roots}
mkdir -p "$base"

declare -A root
say "creating roots for ${versions[*]} (two at a time)"
pids=()
for v in "${versions[@]}"; do
	d=$(mktemp -d "$base/bench-pg$v.XXXXXX")
	rmdir "$d"
	root[$v]=$d
	bash "$snap/test/roots.sh" --create "$d" "$v" >"$out/root-$v.log" 2>&1 &
	pids+=($!)
	if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}" || true; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || true; done

failed=()
figs=()
for v in "${versions[@]}"; do
	if ! grep -qx 'ready=1' "${root[$v]}/etc/finlive-root" 2>/dev/null; then
		say "PostgreSQL $v: the root could not be made (bench/out/root-$v.log)"
		failed+=("$v")
		bash "$snap/test/roots.sh" --remove "${root[$v]}" >/dev/null 2>&1 || true
		continue
	fi
	say "PostgreSQL $v: bench/run.sh in its root"
	t0=$(date +%s)
	rc=0
	FINLIVE_ROOT_OUT=$out/pg$v FINLIVE_BENCH_OUT=/out FINLIVE_BENCH_RESULTS=- \
		bash "$snap/test/roots.sh" --run "${root[$v]}" -- bash bench/run.sh \
		>"$out/run-$v.log" 2>&1 || rc=$?
	say "PostgreSQL $v: exit $rc after $(($(date +%s) - t0)) s"
	if [ "$rc" = 0 ] && [ -s "$out/pg$v/figures-$v.tsv" ]; then
		printf 'time.root\t%s\n' $(($(date +%s) - t0)) >>"$out/pg$v/figures-$v.tsv"
		figs+=("$out/pg$v/figures-$v.tsv")
	else
		failed+=("$v")
		tail -20 "$out/run-$v.log" >&2
	fi
done
if [ ${#figs[@]} -gt 0 ]; then
	bash "$snap/bench/report.sh" "${figs[@]}" >"$here/bench/results.md"
	cat "$here/bench/results.md"
	# the goals of this run into the README and doc/benchmarks.md (the
	# tree's own files, not the snapshot's)
	bash "$here/bench/publish.sh" "${figs[@]}"
fi
say "done in $(($(date +%s) - started)) s${failed:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
