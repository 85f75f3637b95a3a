# Sourced by the test, demo, bench and packaging scripts.  Finds the
# PostgreSQL server to build and test against, and installs (Debian packages
# only) exactly what is missing: every probe below looks for the very file,
# command or module that finlive's scripts use, never for a neighbour of it.
#
#   finlive_select_pg          sets and exports
#                                PG_MAJOR    the major version, e.g. 17
#                                PGBIN       /usr/lib/postgresql/$PG_MAJOR/bin
#                                PG_CONFIG   $PGBIN/pg_config (pass it to every make)
#                                FINLIVE_PG_VERSION=$PG_MAJOR (so child scripts agree)
#                              and puts $PGBIN first on PATH.  The server is
#                              /usr/lib/postgresql/N/bin/postgres: FINLIVE_PG_VERSION=N
#                              chooses N (installing postgresql-N if it is missing),
#                              otherwise the newest installed one is used.
#   finlive_install_deps [tap] finlive_select_pg, then what a build needs: the
#                              server headers ($(pg_config --includedir-server)/
#                              postgres.h) and PGXS (postgresql-server-dev-N), make,
#                              gcc; with "tap" also what the TAP suite needs (prove,
#                              Test::More, Time::HiRes, IPC::Run, libfaketime.so.1,
#                              PostgreSQL::Test::Cluster)
#   finlive_want_cmd CMD PKG   queue PKG unless command CMD exists
#   finlive_want_file FILE PKG queue PKG unless FILE exists
#   finlive_want_perl MOD PKG  queue PKG unless perl can load MOD
#   finlive_want_py MOD PKG    queue PKG unless /usr/bin/python3 can import MOD
#   finlive_install_wanted     apt-get install what was queued (nothing if nothing)
#   finlive_apt_install PKG... apt-get update (once), then install; a package apt
#                              cannot find is named in a clear error
#
# Every function exits the calling script on a fatal error.

_finlive_wanted=()

finlive_want_cmd() { command -v "$1" >/dev/null 2>&1 || _finlive_wanted+=("$2"); }
finlive_want_file() { [ -e "$1" ] || _finlive_wanted+=("$2"); }
finlive_want_perl() { perl -M"$1" -e1 >/dev/null 2>&1 || _finlive_wanted+=("$2"); }
finlive_want_py() {
	[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || _finlive_wanted+=("$2")
}

finlive_install_wanted() {
	[ ${#_finlive_wanted[@]} -gt 0 ] || return 0
	local uniq=() p q seen
	for p in "${_finlive_wanted[@]}"; do
		seen=
		for q in "${uniq[@]}"; do [ "$p" = "$q" ] && seen=1; done
		[ -n "$seen" ] || uniq+=("$p")
	done
	_finlive_wanted=()
	finlive_apt_install "${uniq[@]}"
}

finlive_apt_install() {
	[ $# -gt 0 ] || return 0
	export DEBIAN_FRONTEND=noninteractive
	if [ "$(id -u)" != 0 ]; then
		echo "finlive: $* missing; run as root to have them installed (apt-get install $*)" >&2
		exit 1
	fi
	# One apt-get update per run of a script tree (child scripts inherit the mark).
	if [ -z "${_FINLIVE_APT_UPDATED:-}" ]; then
		if ! apt-get update -qq >/tmp/finlive-apt-update.$$ 2>&1; then
			echo "finlive: apt-get update failed:" >&2
			cat /tmp/finlive-apt-update.$$ >&2
			rm -f /tmp/finlive-apt-update.$$
			exit 1
		fi
		rm -f /tmp/finlive-apt-update.$$
		export _FINLIVE_APT_UPDATED=1
	fi
	local p cand unknown=()
	for p in "$@"; do
		cand=$(apt-cache policy "$p" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
		[ -n "$cand" ] && [ "$cand" != "(none)" ] || unknown+=("$p")
	done
	if [ ${#unknown[@]} -gt 0 ]; then
		echo "finlive: apt cannot find ${unknown[*]} in this machine's package sources" >&2
		echo "finlive: (needed: $*); add a source that has it (PostgreSQL 19 is in Debian" >&2
		echo "finlive: experimental: pin postgresql-*-19, libpq-dev and libpq5 to it), or install it by hand" >&2
		exit 1
	fi
	echo "finlive: installing $*"
	local log
	log=$(mktemp /tmp/finlive-apt.XXXXXX)
	if ! apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1; then
		echo "finlive: apt-get install $* failed:" >&2
		tail -n 40 "$log" >&2
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
}

finlive_select_pg() {
	local v d newest=
	if [ -n "${FINLIVE_PG_VERSION:-}" ]; then
		v=$FINLIVE_PG_VERSION
		case $v in
		*[!0-9]* | '') echo "finlive: FINLIVE_PG_VERSION=$v is not a major version such as 17" >&2; exit 1 ;;
		esac
		[ -x "/usr/lib/postgresql/$v/bin/postgres" ] || finlive_apt_install "postgresql-$v"
	else
		for d in /usr/lib/postgresql/*/bin/postgres; do
			[ -x "$d" ] || continue
			v=${d#/usr/lib/postgresql/}
			v=${v%%/*}
			case $v in *[!0-9]*) continue ;; esac
			if [ -z "$newest" ] || [ "$v" -gt "$newest" ]; then newest=$v; fi
		done
		if [ -z "$newest" ]; then
			echo "finlive: no PostgreSQL server found (/usr/lib/postgresql/N/bin/postgres);" >&2
			echo "finlive: install one (apt-get install postgresql-15), or set FINLIVE_PG_VERSION=N to have postgresql-N installed" >&2
			exit 1
		fi
		v=$newest
	fi
	export PG_MAJOR=$v
	export PGBIN=/usr/lib/postgresql/$v/bin
	export PG_CONFIG=$PGBIN/pg_config
	export FINLIVE_PG_VERSION=$v
	case ":$PATH:" in
	":$PGBIN:"*) ;;
	*) export PATH=$PGBIN:$PATH ;;
	esac
}

finlive_install_deps() {
	finlive_select_pg
	# pg_config itself comes with postgresql-client-N, which the server depends on;
	# the server headers and, with them, all of PGXS's build needs come with
	# postgresql-server-dev-N.
	finlive_want_file "$PG_CONFIG" "postgresql-client-$PG_MAJOR"
	if [ -x "$PG_CONFIG" ]; then
		finlive_want_file "$("$PG_CONFIG" --includedir-server)/postgres.h" "postgresql-server-dev-$PG_MAJOR"
		finlive_want_file "$("$PG_CONFIG" --pgxs)" "postgresql-server-dev-$PG_MAJOR"
	fi
	finlive_want_cmd make make
	finlive_want_cmd gcc gcc
	if [ "${1:-}" = tap ]; then
		finlive_want_cmd prove perl
		finlive_want_perl Test::More perl
		finlive_want_perl Time::HiRes perl
		finlive_want_perl IPC::Run libipc-run-perl
		# t/054 preloads libfaketime (and skips without it)
		local ft
		for ft in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
			[ -e "$ft" ] && break
		done
		finlive_want_file "$ft" libfaketime
	fi
	finlive_install_wanted
	# PGXS's bitcode step (the server is built with LLVM) runs the clang it names.
	local clang
	clang=$(sed -n 's/^CLANG[[:space:]]*=[[:space:]]*//p' \
		"$(dirname "$("$PG_CONFIG" --pgxs)")/../Makefile.global" 2>/dev/null | head -n 1)
	if [ -n "$clang" ] && [ "${clang#/}" != "$clang" ] && [ ! -x "$clang" ]; then
		finlive_apt_install "$(basename "$clang")"
	fi
	if [ "${1:-}" = tap ]; then
		local perl_lib
		perl_lib=$(dirname "$("$PG_CONFIG" --pgxs)")/../test/perl
		perl -I"$perl_lib" -MPostgreSQL::Test::Cluster -e1 >/dev/null 2>&1 || {
			echo "finlive: perl cannot load PostgreSQL::Test::Cluster from $perl_lib:" >&2
			perl -I"$perl_lib" -MPostgreSQL::Test::Cluster -e1 >&2 || true
			exit 1
		}
	fi
	if [ ! -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]; then
		echo "finlive: $("$PG_CONFIG" --includedir-server)/postgres.h is still missing after installing postgresql-server-dev-$PG_MAJOR" >&2
		exit 1
	fi
}
