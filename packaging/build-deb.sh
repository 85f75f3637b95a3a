#!/usr/bin/env bash
# Builds the Debian package postgresql-15-finlive with Debian's PostgreSQL
# tooling (debian/, dh --with pgxs, pg_buildext), installs it the way a
# person would (apt install ./postgresql-15-finlive_*.deb), and checks on a
# throwaway cluster that the installed package works: CREATE EXTENSION at
# the default version, the update path from 1.0, the worker, a mark.
# Also validates META.json (packaging/check-meta.py).
#
# Runs as root on a Debian 12 machine; installs what it needs.
#
#   bash packaging/build-deb.sh
#
# Environment: FINLIVE_DEB_DIR (default /tmp/finlive-deb) receives the .deb;
# FINLIVE_DEB_PGPORT (default 57441) for the throwaway cluster.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
out=${FINLIVE_DEB_DIR:-/tmp/finlive-deb}

# shellcheck source=../test/deps.sh
. "$repo/test/deps.sh"
finlive_install_deps
need=()
for pkg in debhelper dpkg-dev postgresql-server-dev-all python3; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
		|| need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "finlive-deb: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "=== META.json ==="
/usr/bin/python3 "$repo/packaging/check-meta.py" "$repo"

version=$(cd "$repo" && dpkg-parsechangelog -S Version)
work=$(mktemp -d /tmp/finlive-deb-build.XXXXXX)
cleanup() {
	local rc=$?
	declare -F cluster_stop >/dev/null && cluster_stop
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

echo "=== build postgresql-15-finlive $version ==="
src="$work/finlive-$version"
mkdir "$src"
# The source as committed, without build products of a developer's tree.
tar -C "$repo" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=tmp_check --exclude=tmp_regress --exclude=tmp_isolation \
	--exclude=results --exclude=output_iso --exclude='build-[0-9]*' \
	--exclude='debian/postgresql-*' --exclude=debian/.debhelper \
	-cf - . | tar -C "$src" -xf -
(
	cd "$src"
	dpkg-checkbuilddeps
	dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || {
		tail -n 60 "$work/build.log"
		exit 1
	}
)
deb=$(ls "$work"/postgresql-15-finlive_"$version"_*.deb)
echo "built $(basename "$deb")"

# The package holds the library, the control file and every install and
# update script, for PostgreSQL 15.
contents=$(dpkg-deb -c "$deb")
for f in ./usr/lib/postgresql/15/lib/finlive.so \
	./usr/share/postgresql/15/extension/finlive.control \
	./usr/share/postgresql/15/extension/finlive--1.0.sql \
	./usr/share/postgresql/15/extension/finlive--1.0--1.1.sql \
	./usr/share/doc/postgresql-15-finlive/README.md.gz; do
	grep -q " $f\$" <<<"$contents" || { echo "missing from the package: $f"; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q 'postgresql-15' \
	|| { echo "the package does not depend on postgresql-15"; exit 1; }

echo "=== apt install ./$(basename "$deb") ==="
mkdir -p "$out"
cp "$deb" "$out/"
(cd "$out" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall \
	"./$(basename "$deb")" >/dev/null)
dpkg-query -W -f='${Package} ${Version} ${Status}\n' postgresql-15-finlive
[ "$(dpkg-query -W -f='${Version}' postgresql-15-finlive)" = "$version" ]
dpkg --verify postgresql-15-finlive

echo "=== the installed package on a throwaway cluster ==="
# shellcheck source=../test/cluster.sh
. "$repo/test/cluster.sh"
export PGPORT=${FINLIVE_DEB_PGPORT:-57441}
cluster_start "finlive.naptime = 200"
trap cleanup EXIT
check() {
	local what=$1 expected=$2 sql=$3 got
	got=$(psql -X -q -At -v ON_ERROR_STOP=1 -c "$sql")
	if [ "$got" != "$expected" ]; then
		echo "FAIL: $what: expected '$expected', got '$got'"
		exit 1
	fi
	echo "ok: $what"
}
check "CREATE EXTENSION finlive" "1.1" \
	"CREATE EXTENSION finlive; SELECT extversion FROM pg_extension WHERE extname = 'finlive'"
check "the library loaded from the package" "t" \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type ILIKE '%finlive%'"
check "a mark and its token" "t|t|1" \
	"SELECT finlive_mark(7) > 0, finlive_is_active(7), (finlive_snapshot()->>'active')::int"
check "the 1.1 diagnostics" "0" "SELECT count(*) FROM finlive_audit()"
check "CREATE EXTENSION finlive VERSION '1.0'" "1.0" \
	"DROP EXTENSION finlive; CREATE EXTENSION finlive VERSION '1.0';
	 SELECT extversion FROM pg_extension WHERE extname = 'finlive'"
check "ALTER EXTENSION finlive UPDATE" "1.1" \
	"ALTER EXTENSION finlive UPDATE; SELECT extversion FROM pg_extension WHERE extname = 'finlive'"
echo "finlive-deb: $(basename "$deb") built, installed and checked in $(( $(date +%s) - started ))s (copy in $out)"
