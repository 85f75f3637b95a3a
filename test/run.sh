#!/usr/bin/env bash
# Runs every finlive test (pg_regress, isolation, TAP) against real PostgreSQL
# servers that preload finlive, of the one major version installed (15 to 19;
# FINLIVE_PG_VERSION=N chooses when several are: test/deps.sh).  Works on a
# fresh Debian machine that has only the server, as root: installs what it
# needs, builds and installs the extension, then runs the suites as the
# unprivileged "postgres" user (initdb refuses root).
#
#   bash test/run.sh                      # everything
#   SUITES="regress tap" bash test/run.sh # a subset, from:
#     regress isolation tap   the extension's own suites (pg_regress, isolation, TAP;
#                             FINLIVE_TAP_JOBS=N runs N TAP files at once, default 1)
#     python                  the Python client against a server and a PgBouncer
#     package                 the Debian package: built, installed with apt, checked
#     fuzz                    thousands of bad calls; tables altered under the reaper
#     chaos                   a simulated orchestrator under injected faults (short form)
#     asan                    the suites, 10^6 mark/clear cycles and the fuzz pass against
#                             finlive built with AddressSanitizer and UBSan
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
suites=${SUITES:-"regress isolation tap python package fuzz chaos asan"}

# shellcheck source=test/deps.sh
. "$here/test/deps.sh"
finlive_install_deps tap
echo "finlive: PostgreSQL $("$PGBIN/postgres" --version | cut -d' ' -f3-) ($PG_CONFIG)"

# A private copy of the tree that the unprivileged user can write to.
work=$(mktemp -d /tmp/finlive-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a "$here/." "$work/"
rm -rf "$work/.git"
chown -R postgres: "$work"
as_pg() { runuser -u postgres -- "$@"; }

as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" COPT='-Werror'
make -C "$work" -s PG_CONFIG="$PG_CONFIG" install >/dev/null

status=0
passed=0
failed=0
report=()
record() {    # NAME ok|FAILED START
	report+=("$(printf '%-20s %-6s %4d s' "$1" "$2" $(( $(date +%s) - $3 )))")
}
run_suite() {
	local name=$1 t0; shift
	t0=$(date +%s)
	echo "=== finlive: $name ==="
	if as_pg make -C "$work" PG_CONFIG="$PG_CONFIG" "$@"; then
		passed=$((passed + 1))
		record "$name" ok "$t0"
	else
		status=1
		failed=$((failed + 1))
		record "$name" FAILED "$t0"
		for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs; do
			[ -s "$f" ] && { echo "--- $f"; cat "$f"; }
		done
		for f in "$work"/tmp_check/log/*; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }
		done
	fi
	return 0    # a failed suite is counted; the next one runs
}
# Suites that are scripts of their own; each prints its figures and exits
# non-zero on failure.
run_script() {
	local name=$1 t0; shift
	t0=$(date +%s)
	echo "=== finlive: $name ==="
	if "$@"; then
		passed=$((passed + 1))
		record "$name" ok "$t0"
	else
		status=1
		failed=$((failed + 1))
		record "$name" FAILED "$t0"
	fi
	return 0
}
for s in $suites; do
	case $s in
	regress)   run_suite "pg_regress" installcheck-regress ;;
	isolation) run_suite "isolation" installcheck-isolation ;;
	tap)       run_suite "TAP" installcheck-tap PROVE_FLAGS="-j${FINLIVE_TAP_JOBS:-1} ${PROVE_FLAGS:-}" ;;
	python)    run_script "Python client" bash "$here/clients/python/run-tests.sh" ;;
	package)   run_script "Debian package" bash "$here/packaging/build-deb.sh" ;;
	fuzz)      run_script "fuzz pass" env FINLIVE_SKIP_INSTALL=1 bash "$here/test/fuzz/run.sh" ;;
	chaos)     run_script "chaos run (short)" env CHAOS_MODE=short FINLIVE_SKIP_INSTALL=1 \
			bash "$here/test/chaos/run.sh" ;;
	asan)      run_script "sanitizers" bash "$here/test/asan/run.sh" ;;
	*) echo "unknown suite $s" >&2; exit 2 ;;
	esac
done
echo "=== finlive: PostgreSQL $PG_MAJOR ==="
for r in "${report[@]}"; do echo "  $r"; done
echo "suites: $passed passed, $failed failed"
exit $status
