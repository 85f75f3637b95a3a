#!/usr/bin/env bash
# For porting finlive to another PostgreSQL major: in a fresh root per
# version (test/roots.sh), builds this tree with the CI's warning flags and
# keeps the compiler's full output, copies the server headers, and fetches
# and unpacks that version's PostgreSQL source package from Debian.
#
#   bash test/pgsrc.sh [OUTDIR] [N...]     # default /work/pgsrc, 15 17 18 19
#
# Leaves, per version N:
#   OUTDIR/build-N.log    make -k output (the last line is "make exit S")
#   OUTDIR/N/include      /usr/include/postgresql/N/server of the root
#   OUTDIR/N/src, ...     the upstream source tree (the .orig tarball of the
#                         Debian source package postgresql-N; debian/ beside it
#                         as OUTDIR/N/debian)
# Inside a root it is run as: bash test/pgsrc.sh --inside N
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
COPT_STRICT='-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare'

if [ "${1:-}" = --inside ]; then
	v=$2
	out=/out
	# shellcheck source=test/deps.sh
	. "$here/test/deps.sh"
	FINLIVE_PG_VERSION=$v finlive_install_deps
	finlive_want_cmd xz xz-utils
	finlive_want_cmd bzip2 bzip2
	finlive_want_cmd dpkg-source dpkg-dev
	finlive_install_wanted
	echo "pgsrc: building with PostgreSQL $v ($PG_CONFIG)"
	make -s PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
	set +e
	make -k PG_CONFIG="$PG_CONFIG" COPT="$COPT_STRICT" >"$out/build-$v.log" 2>&1
	echo "make exit $?" >>"$out/build-$v.log"
	set -e
	tail -n 1 "$out/build-$v.log"
	rm -rf "$out/$v"
	mkdir -p "$out/$v"
	cp -a "$("$PG_CONFIG" --includedir-server)" "$out/$v/include"
	work=$(mktemp -d /tmp/pgsrc.XXXXXX)
	if ! (cd "$work" && apt-get source --download-only "postgresql-$v" >"$work/log" 2>&1); then
		grep -E '^E:' "$work/log" || tail -n 5 "$work/log"
		echo "pgsrc: PostgreSQL $v: headers in $out/$v/include; the source package is not on this mirror"
		rm -rf "$work"
		exit 0
	fi
	orig=$(ls "$work"/postgresql-"$v"_*.orig.tar.* | head -n 1)
	tar -C "$out/$v" --strip-components=1 -xf "$orig"
	deb=$(ls "$work"/postgresql-"$v"_*.debian.tar.* 2>/dev/null | head -n 1 || true)
	[ -n "$deb" ] && tar -C "$out/$v" -xf "$deb"
	cp "$work"/*.dsc "$out/$v/" 2>/dev/null || true
	rm -rf "$work"
	echo "pgsrc: PostgreSQL $v: headers in $out/$v/include, source $(basename "$orig") in $out/$v"
	exit 0
fi

out=${1:-/work/pgsrc}
[ $# -gt 0 ] && shift
versions=${*:-15 17 18 19}
mkdir -p "$out"
status=0
for v in $versions; do
	FINLIVE_ROOT_DEB_SRC=1 FINLIVE_ROOT_OUT=$out bash "$here/test/roots.sh" "$v" -- \
		bash test/pgsrc.sh --inside "$v" || status=1
done
exit $status
