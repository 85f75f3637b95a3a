# Shared by test/chaos/run.sh, test/fuzz/run.sh and test/asan/run.sh.
#
#   chaos_deps [extra apt packages...]  finlive's build deps (test/deps.sh),
#                                       python3-psycopg2 and the extras
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
	local need=()
	[ -x "$PY" ] || need+=(python3)
	"$PY" -c 'import psycopg2' >/dev/null 2>&1 || need+=(python3-psycopg2)
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
	done
	if [ ${#need[@]} -gt 0 ]; then
		echo "finlive: installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${need[@]}" >/dev/null
	fi
}

chaos_install_finlive() {
	[ "${FINLIVE_SKIP_INSTALL:-0}" = 1 ] && return 0
	local work
	work=$(mktemp -d /tmp/finlive-build.XXXXXX)
	tar -C "$_chaos_root" --exclude=.git --exclude='tmp_*' --exclude=results -cf - . | tar -C "$work" -xf -
	chown -R postgres: "$work"
	runuser -u postgres -- make -C "$work" -s clean >/dev/null 2>&1 || true
	runuser -u postgres -- make -C "$work" -s >/dev/null
	make -C "$work" -s install >/dev/null
	rm -rf "$work"
}
