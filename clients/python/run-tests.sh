#!/usr/bin/env bash
# Tests of the finlive Python client against a real server, as root on a
# Debian 12 machine: installs what it needs (Debian packages only), builds
# and installs finlive from a private copy of the tree, type-checks the
# package (mypy --strict), installs it into a virtualenv that sees Debian's
# psycopg2, psycopg 3 and pytest, starts a throwaway cluster that preloads
# finlive and a PgBouncer in front of it (one database entry in transaction
# pooling mode, one in session mode), plus a second cluster that does not
# preload finlive, and runs the client's pytest suite with each driver
# (psycopg2; psycopg 3, blocking and asyncio), the worked example included,
# and the example from the root of the (built) source tree.
#
#   bash clients/python/run-tests.sh [pytest arguments...]
#
# Environment: FINLIVE_PY_PGPORT (default 57431) for the throwaway cluster;
# PgBouncer listens on the next port, the cluster without the preload on the
# one after.  All use Unix sockets only.
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
finlive_want_py psycopg python3-psycopg
finlive_want_py mypy python3-mypy
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
nopreload=
cleanup() {
	local rc=$?
	if [ -n "$bouncer_pid" ] && kill -0 "$bouncer_pid" 2>/dev/null; then
		kill "$bouncer_pid" 2>/dev/null || true
	fi
	if [ -n "$nopreload" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$nopreload/data" -m immediate stop \
			>/dev/null 2>&1 || true
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

# -- the types ----------------------------------------------------------------------
# mypy --strict over the package (configured in pyproject.toml), against
# Debian's psycopg 3, which ships its type hints; psycopg2 has none.
echo "finlive-py: $("$python" -m mypy --version)"
(cd "$work/src/clients/python" && "$python" -m mypy --cache-dir "$work/mypy-cache" finlive)

# -- the client package, installed as a user would ------------------------------
cd "$work"      # not the source tree: it holds a finlive.so that Python would try to import
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --no-deps --no-build-isolation --no-index \
	"$work/src/clients/python" >/dev/null
"$work/venv/bin/python" -c 'import finlive, psycopg2, psycopg
print("finlive-py: client", finlive.__version__, "psycopg2", psycopg2.__version__,
      "psycopg", psycopg.__version__)'

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
CREATE DATABASE finlive_noext;
CREATE DATABASE finlive_example;
\c finlive_quiet
CREATE EXTENSION finlive;
\c finlive_example
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

# -- a cluster that does not preload finlive (the extension installed all the same) --
nport=$((PGPORT + 2))
nopreload=$work/nopreload
mkdir "$nopreload"
chown postgres: "$nopreload"
runuser -u postgres -- "$PGBIN/initdb" -A trust -U postgres -D "$nopreload/data" >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\n" \
	"$nopreload" "$nport" >>"$nopreload/data/postgresql.conf"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$nopreload/data" -l "$nopreload/server.log" \
	-w start >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -h "$nopreload" -p "$nport" -d postgres \
	-c 'CREATE EXTENSION finlive' >/dev/null

# -- the worked example from the root of the source tree ---------------------------
# The tree's root holds the extension's finlive.so; its finlive symlink (to
# clients/python/finlive) is a package directory, which Python's import
# system prefers to an extension module of the same name.
[ -f "$work/src/finlive.so" ] || { echo "finlive-py: the build left no finlive.so" >&2; exit 1; }
example_dsn="host=$CLUSTER_DIR port=$PGPORT dbname=finlive_example user=postgres"
for drv in psycopg2 psycopg; do
	(
		cd "$work/src"
		from=$("$python" -c 'import finlive; print(finlive.__file__)')
		[ "$from" = "$work/src/finlive/__init__.py" ] \
			|| { echo "finlive-py: the root imported finlive from $from" >&2; exit 1; }
		"$python" -m finlive.example --help >/dev/null
		"$python" -m finlive.example --dsn "$example_dsn" --driver "$drv" setup >/dev/null
		"$python" -m finlive.example --dsn "$example_dsn" --driver "$drv" status \
			| "$python" -c 'import json, sys; assert "finalizer_owned" in json.load(sys.stdin)'
	)
	echo "finlive-py: python3 -m finlive.example from the source root with $drv: ok"
done

# -- the tests --------------------------------------------------------------------
export FINLIVE_TEST_DSN="host=$CLUSTER_DIR port=$PGPORT dbname=postgres user=postgres"
export FINLIVE_TEST_QUIET_DSN="host=$CLUSTER_DIR port=$PGPORT dbname=finlive_quiet user=postgres"
export FINLIVE_TEST_NOEXT_DSN="host=$CLUSTER_DIR port=$PGPORT dbname=finlive_noext user=postgres"
export FINLIVE_TEST_NOPRELOAD_DSN="host=$nopreload port=$nport dbname=postgres user=postgres"
export FINLIVE_TEST_BOUNCER_TX_DSN="host=$CLUSTER_DIR port=$bport dbname=finlive_tx user=postgres"
export FINLIVE_TEST_BOUNCER_SESSION_DSN="host=$CLUSTER_DIR port=$bport dbname=finlive_session user=postgres"
export FINLIVE_TEST_README="$work/src/clients/python/README.md"
export FINLIVE_TEST_STRICT=1 FINLIVE_TEST_INSTALLED=1
cp -a "$work/src/clients/python/tests" "$work/tests"
cd "$work"
set +e
"$work/venv/bin/python" -m pytest -p no:cacheprovider -p no:asyncio -q -rfEs \
	--junitxml "$work/junit.xml" --rootdir "$work/tests" "$work/tests" "$@"
rc=$?
set -e
# What ran, per driver and mode.
[ -f "$work/junit.xml" ] && "$python" - "$work/junit.xml" <<'PY' || true
import collections, sys, xml.etree.ElementTree as ET
counts = collections.defaultdict(collections.Counter)
for case in ET.parse(sys.argv[1]).iter("testcase"):
    name = case.get("name", "")
    mode = ("psycopg2" if name.endswith("[psycopg2]") else
            "psycopg3" if name.endswith("[psycopg3]") else
            "psycopg3-async" if case.get("classname", "").endswith("test_aio") else
            "no driver")
    outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
    counts[mode][outcome] += 1
for mode in ("psycopg2", "psycopg3", "psycopg3-async", "no driver"):
    if counts[mode]:
        print("finlive-py: %-15s %s" % (mode, ", ".join(
            "%d %s" % (n, o) for o, n in sorted(counts[mode].items()))))
PY
echo "finlive-py: pytest exit $rc after $(( $(date +%s) - started ))s"
exit $rc
