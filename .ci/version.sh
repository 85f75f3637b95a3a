#!/usr/bin/env bash
# One PostgreSQL version's part of CI, run by .ci/run inside that version's
# fresh root (test/roots.sh), from the copied tree:
#
#   bash .ci/version.sh [SUITES...]      # no SUITES: the README's "bash test/run.sh"
#
#  1. installs what the build needs (test/deps.sh), the way the README's
#     commands do;
#  2. builds with -Wall -Wextra -Werror (and the Makefile's own PG_CFLAGS),
#     printing the compiler's output when it fails;
#  3. runs test/run.sh with SUITES (all of them when none are given).
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

result() {    # BUILD PASSED FAILED
	echo "version=${PG_MAJOR:-?} build=$1 passed=$2 failed=$3 secs=$(( $(date +%s) - start ))" >"$out/result"
}
result failed 0 1     # until it is known better

# shellcheck source=test/deps.sh
. test/deps.sh
finlive_install_deps tap      # exits (result: build failed) when it cannot
echo "ci: PostgreSQL $("$PGBIN/postgres" --version | cut -d' ' -f3-), $PG_CONFIG, $(gcc --version | head -n 1)"

echo "=== ci: PostgreSQL $PG_MAJOR: build with $COPT_STRICT ==="
build=$(mktemp -d /tmp/finlive-ci-build.XXXXXX)
tar --exclude=.git -cf - . | tar -C "$build" -xf -
make -C "$build" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
if ! make -C "$build" -k PG_CONFIG="$PG_CONFIG" COPT="$COPT_STRICT" >"$out/build.log" 2>&1; then
	echo "ci: PostgreSQL $PG_MAJOR: the build FAILED; the compiler said (commands left out):"
	grep -vE ' -c -o | -shared -o |^make(\[[0-9]+\])?: (Entering|Leaving) directory' "$out/build.log"
	rm -rf "$build"
	result failed 0 1
	exit 1
fi
grep -E 'warning:|error:' "$out/build.log" || true
rm -rf "$build"
echo "ci: PostgreSQL $PG_MAJOR: build ok"

echo "=== ci: PostgreSQL $PG_MAJOR: bash test/run.sh${suites:+ (SUITES=\"$suites\")} ==="
if [ -n "$suites" ]; then
	SUITES=$suites bash test/run.sh 2>&1 | tee "$out/run.log"
else
	env -u SUITES bash test/run.sh 2>&1 | tee "$out/run.log"
fi
rc=${PIPESTATUS[0]}
line=$(grep -E '^suites: [0-9]+ passed, [0-9]+ failed$' "$out/run.log" | tail -n 1)
passed=$(sed -E 's/^suites: ([0-9]+) passed.*/\1/' <<<"$line")
failed=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
if [ -z "$line" ]; then passed=0; failed=1; fi
[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
result ok "$passed" "$failed"
exit "$rc"
