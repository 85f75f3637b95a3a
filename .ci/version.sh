#!/usr/bin/env bash
# One PostgreSQL version's part of CI, run by .ci/run inside that version's
# fresh root (test/roots.sh), from the copied tree:
#
#   bash .ci/version.sh            # the README's "bash test/run.sh" (every suite)
#   bash .ci/version.sh SUITE...   # SUITES="SUITE..." bash test/run.sh
#
# Without SUITES, "bash test/run.sh" runs first, on the root as it was made,
# so that its own install step is the one exercised (as the README promises);
# then the -Wall -Wextra -Werror build.  With SUITES, the build comes first
# (dependencies from test/deps.sh), and the suites run only when it passed.
# A failed build prints the compiler's diagnostics.
#
# Writes a one-line result to /out/result (when /out exists):
#   version=N build=ok|failed passed=P failed=F secs=S
# Exit status 0 only when the build and every suite passed.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=/out
[ -d "$out" ] || out=$(mktemp -d /tmp/finlive-ci-out.XXXXXX)
suites="$*"
COPT_STRICT='-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare'
build=failed passed=0 failed=1

result() {
	echo "version=${PG_MAJOR:-${FINLIVE_ROOT_VERSION:-?}} build=$build passed=$passed failed=$failed secs=$(( $(date +%s) - start ))" >"$out/result"
}
result     # until it is known better

strict_build() {
	# shellcheck source=test/deps.sh
	. test/deps.sh
	finlive_install_deps tap      # exits (result: build failed) when it cannot
	echo "ci: PostgreSQL $("$PGBIN/postgres" --version | cut -d' ' -f3-), $PG_CONFIG, $(gcc --version | head -n 1)"
	echo "=== ci: PostgreSQL $PG_MAJOR: build with $COPT_STRICT ==="
	local dir
	dir=$(mktemp -d /tmp/finlive-ci-build.XXXXXX)
	tar --exclude=.git -cf - . | tar -C "$dir" -xf -
	make -C "$dir" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
	if ! make -C "$dir" -k PG_CONFIG="$PG_CONFIG" COPT="$COPT_STRICT" >"$out/build.log" 2>&1; then
		echo "ci: PostgreSQL $PG_MAJOR: the build FAILED; the compiler said (commands left out):"
		grep -vE ' -c -o | -shared -o |^make(\[[0-9]+\])?: (Entering|Leaving) directory' "$out/build.log"
		rm -rf "$dir"
		build=failed
		return 1
	fi
	grep -E 'warning:|error:' "$out/build.log" || true
	rm -rf "$dir"
	echo "ci: PostgreSQL $PG_MAJOR: build ok"
	build=ok
}

run_suites() {
	echo "=== ci: PostgreSQL ${PG_MAJOR:-${FINLIVE_ROOT_VERSION:-}}: bash test/run.sh${suites:+ (SUITES=\"$suites\")} ==="
	if [ -n "$suites" ]; then
		SUITES=$suites bash test/run.sh 2>&1 | tee "$out/run.log"
	else
		env -u SUITES bash test/run.sh 2>&1 | tee "$out/run.log"
	fi
	local rc=${PIPESTATUS[0]} line
	line=$(grep -E '^suites: [0-9]+ passed, [0-9]+ failed$' "$out/run.log" | tail -n 1)
	if [ -n "$line" ]; then
		passed=$(sed -E 's/^suites: ([0-9]+) passed.*/\1/' <<<"$line")
		failed=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
	else
		passed=0 failed=1      # test/run.sh stopped before its summary (its build failed)
	fi
	[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
	return "$rc"
}

status=0
if [ -z "$suites" ]; then
	run_suites || status=1
	strict_build || status=1
	# a build that fails here failed in test/run.sh too: count it once
	[ "$build" = ok ] || { passed=0; failed=0; }
else
	if strict_build; then
		run_suites || status=1
	else
		status=1
		passed=0 failed=0
	fi
fi
result
exit $status
