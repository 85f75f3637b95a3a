#!/usr/bin/env bash
# Tests of the finlive Python client against a real server, as root on a
# Debian 12 machine: installs what it needs (Debian packages only), builds
# and installs finlive from a private copy of the tree, installs the client
# package into a virtualenv that sees Debian's psycopg2 and pytest, starts a
# throwaway cluster that preloads finlive and a PgBouncer in front of it
# (one database entry in transaction pooling mode, one in session mode), and
# runs the client's pytest suite, the worked example included.
#
#   bash clients/python/run-tests.sh [pytest arguments...]
#
# Environment: FINLIVE_PY_PGPORT (default 57431) for the throwaway cluster;
# PgBouncer listens on the next port.  Both use Unix sockets only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
started=$(date +%s)

# -- packages -------------------------------------------------------------
# shellcheck source=../../test/deps.sh
. "$repo/test/deps.sh"
finlive_install_deps
finlive_want_file /usr/bin/python3 python3
finlive_want_py psycopg2 python3-psycopg2
finlive_want_py pytest python3-pytest
finlive_want_py ensurepip python3-venv
finlive_want_py pip python3-pip
finlive_want_py setuptools python3-setuptools
finlive_want_py wheel python3-wheel
finlive_want_file /usr/sbin/pgbouncer pgbouncer
finlive_want_cmd psql "postgresql-client-$PG_MAJOR"
finlive_install_wanted
python=/usr/bin/python3     # Debian's, whatever else is on PATH

# -- build and install finlive from a private copy ----------------------------
work=$(mktemp -d /tmp/finlive-py.XXXXXX)
chmod 755 "$work"
bouncer_pid=
cleanup() {
	local rc=$?
	if [ -n "$bouncer_pid" ] && kill -0 "$bouncer_pid" 2>/dev/null; then
		kill "$bouncer_pid" 2>/dev/null || true
	fi
	if [ $rc -ne 0 ] && [ -n "${CLUSTER_DIR:-}" ]; then
		echo "--- server log (tail)"; tail -n 40 "$CLUSTER_DIR/server.log" 2>/dev/null || true
		echo "--- pgbouncer log (tail)"; tail -n 20 "$CLUSTER_DIR/pgbouncer.log" 2>/dev/null || true
	fi
	declare -F cluster_stop >/dev/null && cluster_stop
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
mkdir "$work/src"
cp -a "$repo/." "$work/src"
rm -rf "$work/src/.git"
chown -R postgres: "$work/src"
runuser -u postgres -- make -C "$work/src" -s clean >/dev/null
runuser -u postgres -- make -C "$work/src" -s >/dev/null
make -C "$work/src" -s install >/dev/null

# -- the client package, installed as a user would ------------------------------
cd "$work"      # not the source tree: it holds a finlive.so that Python would try to import
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --no-deps --no-build-isolation --no-index \
	"$work/src/clients/python" >/dev/null
"$work/venv/bin/python" -c 'import finlive, psycopg2; print("finlive-py: client", finlive.__version__, "psycopg2", psycopg2.__version__)'

# -- a throwaway cluster, and PgBouncer in front of it --------------------------
# shellcheck source=../../test/cluster.sh
. "$repo/test/cluster.sh"
export PGPORT=${FINLIVE_PY_PGPORT:-57431}
cluster_start \
	"finlive.database = 'postgres'" \
	"finlive.restart_grace = 0" \
	"finlive.finalize_grace = 2" \
	"finlive.naptime = 1000" \
	"max_connections = 60"
trap cleanup EXIT
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE EXTENSION finlive;
CREATE DATABASE finlive_quiet;
\c finlive_quiet
CREATE EXTENSION finlive;
SQL

bport=$((PGPORT + 1))
cat >"$CLUSTER_DIR/pgbouncer.ini" <<EOF
[databases]
finlive_tx      = host=$CLUSTER_DIR port=$PGPORT dbname=postgres user=postgres pool_mode=transaction
finlive_session = host=$CLUSTER_DIR port=$PGPORT dbname=postgres user=postgres pool_mode=session

[pgbouncer]
listen_addr =
listen_port = $bport
unix_socket_dir = $CLUSTER_DIR
auth_type = any
pool_mode = session
default_pool_size = 4
max_client_conn = 100
server_reset_query = DISCARD ALL
logfile = $CLUSTER_DIR/pgbouncer.log
pidfile = $CLUSTER_DIR/pgbouncer.pid
EOF
chown postgres: "$CLUSTER_DIR/pgbouncer.ini"
runuser -u postgres -- /usr/sbin/pgbouncer -d "$CLUSTER_DIR/pgbouncer.ini"
for _ in $(seq 100); do
	[ -S "$CLUSTER_DIR/.s.PGSQL.$bport" ] && [ -s "$CLUSTER_DIR/pgbouncer.pid" ] && break
	sleep 0.1
done
bouncer_pid=$(cat "$CLUSTER_DIR/pgbouncer.pid")
psql -X -q -At -h "$CLUSTER_DIR" -p "$bport" -d finlive_tx -c 'SELECT 1' >/dev/null

# -- the tests --------------------------------------------------------------------
export FINLIVE_TEST_DSN="host=$CLUSTER_DIR port=$PGPORT dbname=postgres user=postgres"
export FINLIVE_TEST_QUIET_DSN="host=$CLUSTER_DIR port=$PGPORT dbname=finlive_quiet user=postgres"
export FINLIVE_TEST_BOUNCER_TX_DSN="host=$CLUSTER_DIR port=$bport dbname=finlive_tx user=postgres"
export FINLIVE_TEST_BOUNCER_SESSION_DSN="host=$CLUSTER_DIR port=$bport dbname=finlive_session user=postgres"
export FINLIVE_TEST_STRICT=1 FINLIVE_TEST_INSTALLED=1
cp -a "$work/src/clients/python/tests" "$work/tests"
cd "$work"
set +e
"$work/venv/bin/python" -m pytest -p no:cacheprovider -q -rfEs \
	--rootdir "$work/tests" "$work/tests" "$@"
rc=$?
set -e
echo "finlive-py: pytest exit $rc after $(( $(date +%s) - started ))s"
exit $rc
