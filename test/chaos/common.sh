# Shared by test/chaos/run.sh, test/fuzz/run.sh and test/asan/run.sh.
#
#   chaos_deps                          finlive's build deps (test/deps.sh),
#                                       python3 and psycopg2; callers queue
#                                       more probes (finlive_want_*) first
#   chaos_install_finlive               build the tree as "postgres" in a
#                                       private copy and install it, unless
#                                       FINLIVE_SKIP_INSTALL=1 (test/run.sh
#                                       has just done it)
#   PY                                  the system python (/usr/bin/python3,
#                                       never a pyenv one on PATH)
PY=/usr/bin/python3
_chaos_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

chaos_deps() {
	# shellcheck source=test/deps.sh
	. "$_chaos_root/test/deps.sh"
	finlive_install_deps
	finlive_want_file "$PY" python3
	finlive_want_py psycopg2 python3-psycopg2
	finlive_want_cmd psql "postgresql-client-$PG_MAJOR"
	finlive_install_wanted
}

chaos_install_finlive() {
	[ "${FINLIVE_SKIP_INSTALL:-0}" = 1 ] && return 0
	local work
	work=$(mktemp -d /tmp/finlive-build.XXXXXX)
	tar -C "$_chaos_root" --exclude=.git --exclude='tmp_*' --exclude=results -cf - . | tar -C "$work" -xf -
	chown -R postgres: "$work"
	runuser -u postgres -- make -C "$work" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
	runuser -u postgres -- make -C "$work" -s PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$work" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	rm -rf "$work"
}
