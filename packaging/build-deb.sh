#!/usr/bin/env bash
# Builds the Debian package postgresql-N-finlive, for the PostgreSQL major N
# that is installed (test/deps.sh: the newest, or FINLIVE_PG_VERSION=N), with
# Debian's PostgreSQL tooling (debian/, dh --with pgxs_loop, pg_buildext; N
# must be listed in debian/pgversions), installs it the way a person would
# (apt install ./postgresql-N-finlive_*.deb), and checks on a throwaway
# cluster that the installed package works: CREATE EXTENSION at the default
# version, the update path from 1.0, the worker, a mark.  Also validates
# META.json (packaging/check-meta.py).
#
# Runs as root on a Debian machine (12 or later); installs what it needs.
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
finlive_want_cmd dh debhelper
finlive_want_cmd dpkg-buildpackage dpkg-dev
finlive_want_cmd dpkg-checkbuilddeps dpkg-dev
finlive_want_cmd dpkg-parsechangelog dpkg-dev
finlive_want_file /usr/share/perl5/Debian/Debhelper/Sequence/pgxs_loop.pm postgresql-server-dev-all
finlive_want_cmd pg_buildext postgresql-common
finlive_want_file /usr/bin/python3 python3
finlive_want_cmd psql "postgresql-client-$PG_MAJOR"
finlive_install_wanted
pkg=postgresql-$PG_MAJOR-finlive
grep -qx "$PG_MAJOR" "$repo/debian/pgversions" || {
	echo "finlive-deb: PostgreSQL $PG_MAJOR is not in debian/pgversions ($(tr '\n' ' ' <"$repo/debian/pgversions"))"
	exit 1
}

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

echo "=== build $pkg $version (PostgreSQL $PG_MAJOR) ==="
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
	# pg_buildext builds for the versions in debian/pgversions that it is told
	# are supported: here exactly the one installed.  debian/control gets the
	# package stanza for it (pg_buildext updatecontrol, from debian/control.in).
	export PG_SUPPORTED_VERSIONS=$PG_MAJOR
	pg_buildext updatecontrol
	grep -qx "Package: $pkg" debian/control || { echo "finlive-deb: debian/control has no $pkg"; exit 1; }
	# What dpkg-buildpackage itself will check (Build-Depends and
	# build-essential): install what it names as unmet, first alternatives.
	if ! unmet=$(dpkg-checkbuilddeps 2>&1); then
		wanted=()
		for dep in $(sed -n 's/.*[Uu]nmet build dependencies: //p' <<<"$unmet" | head -n 1 |
			sed -E 's/\([^)]*\)//g; s/\[[^]]*\]//g; s/<[^>]*>//g; s/ *\| */|/g'); do
			dep=${dep%%|*}
			wanted+=("${dep%%:*}")
		done
		[ ${#wanted[@]} -gt 0 ] || { echo "$unmet"; exit 1; }
		finlive_apt_install "${wanted[@]}"
		dpkg-checkbuilddeps
	fi
	dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || {
		tail -n 60 "$work/build.log"
		exit 1
	}
)
deb=$(ls "$work"/"$pkg"_"$version"_*.deb)
echo "built $(basename "$deb")"

# The package holds the library, the control file and every install and
# update script, for PostgreSQL $PG_MAJOR.
contents=$(dpkg-deb -c "$deb")
# The versions and scripts are the tree's: finlive.control's default_version,
# and every finlive--*.sql.
default_version=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$repo/finlive.control")
[ -n "$default_version" ] || { echo "finlive-deb: no default_version in finlive.control"; exit 1; }
scripts=()
for f in "$repo"/finlive--*.sql; do
	scripts+=("./usr/share/postgresql/$PG_MAJOR/extension/$(basename "$f")")
done
for f in ./usr/lib/postgresql/$PG_MAJOR/lib/finlive.so \
	./usr/share/postgresql/$PG_MAJOR/extension/finlive.control \
	"${scripts[@]}" \
	./usr/share/doc/$pkg/README.md.gz; do
	grep -q " $f\$" <<<"$contents" || { echo "missing from the package: $f"; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -qE "(^|[ ,|])postgresql-$PG_MAJOR([ ,(]|\$)" \
	|| { echo "the package does not depend on postgresql-$PG_MAJOR"; exit 1; }

echo "=== apt install ./$(basename "$deb") ==="
mkdir -p "$out"
cp "$deb" "$out/"
(cd "$out" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall \
	"./$(basename "$deb")" >/dev/null)
dpkg-query -W -f='${Package} ${Version} ${Status}\n' "$pkg"
[ "$(dpkg-query -W -f='${Version}' "$pkg")" = "$version" ]
dpkg --verify "$pkg"

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
check "CREATE EXTENSION finlive" "$default_version" \
	"CREATE EXTENSION finlive; SELECT extversion FROM pg_extension WHERE extname = 'finlive'"
for _ in $(seq 100); do
	[ "$(psql -X -q -At -c "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type ILIKE '%finlive%'")" = t ] && break
	sleep 0.1
done
check "the library loaded from the package (its worker runs)" "t" \
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type ILIKE '%finlive%'"
check "a mark and its token" "t|t|1" \
	"SELECT finlive_mark(7) > 0, finlive_is_active(7), (finlive_snapshot()->>'active')::int"
check "the 1.1 diagnostics" "0" "SELECT count(*) FROM finlive_audit()"
check "CREATE EXTENSION finlive VERSION '1.0'" "1.0" \
	"DROP EXTENSION finlive; CREATE EXTENSION finlive VERSION '1.0';
	 SELECT extversion FROM pg_extension WHERE extname = 'finlive'"
check "ALTER EXTENSION finlive UPDATE" "$default_version" \
	"ALTER EXTENSION finlive UPDATE; SELECT extversion FROM pg_extension WHERE extname = 'finlive'"
echo "finlive-deb: $(basename "$deb") built, installed and checked in $(( $(date +%s) - started ))s (copy in $out)"
