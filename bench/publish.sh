#!/usr/bin/env bash
# Puts the goals of one benchmark run (bench/report.sh --goals) into the
# README and doc/benchmarks.md, between their "bench:goals" markers, so
# that both show the run bench/results.md shows and nothing older.
# bench/matrix.sh calls it after a run with every version's figures.
#
#   bash bench/publish.sh bench/out/pg*/figures-*.tsv
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || { echo "usage: publish.sh figures-N.tsv..." >&2; exit 2; }
goals=$(mktemp)
trap 'rm -f "$goals"' EXIT
bash "$here/bench/report.sh" --goals "$@" >"$goals"
for f in "$here/README.md" "$here/doc/benchmarks.md"; do
	grep -q '^<!-- bench:goals:begin -->$' "$f" && grep -q '^<!-- bench:goals:end -->$' "$f" ||
		{ echo "publish: $f has no bench:goals markers" >&2; exit 1; }
	awk -v goals="$goals" '
		/^<!-- bench:goals:begin -->$/ { print; while ((getline l < goals) > 0) print l; skip = 1; next }
		/^<!-- bench:goals:end -->$/ { skip = 0 }
		!skip' "$f" >"$f.new"
	mv "$f.new" "$f"
done
echo "publish: the goals of $# run(s) are in README.md and doc/benchmarks.md" >&2
