# Sourced by the demo, test and bench scripts: a throwaway PostgreSQL cluster
# of the version test/deps.sh chose ($PGBIN), with finlive preloaded, owned by
# the unprivileged "postgres" user (initdb refuses root), listening only on a
# Unix socket in its own directory.
#
#   cluster_start [extra postgresql.conf lines...]   sets PGHOST PGPORT PGDATA
#   cluster_stop                                      (also run at exit)
cluster_start() {
	declare -F finlive_select_pg >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
	finlive_select_pg
	local bindir=$PGBIN
	CLUSTER_DIR=$(mktemp -d /tmp/finlive-cluster.XXXXXX)
	chown postgres: "$CLUSTER_DIR"
	export PGDATA=$CLUSTER_DIR/data PGHOST=$CLUSTER_DIR PGPORT=${PGPORT:-54329} PGUSER=postgres PGDATABASE=postgres
	runuser -u postgres -- "$bindir/initdb" -A trust -U postgres -D "$PGDATA" >/dev/null
	{
		echo "shared_preload_libraries = 'finlive'"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "port = $PGPORT"
		for line in "$@"; do echo "$line"; done
	} >>"$PGDATA/postgresql.conf"
	runuser -u postgres -- "$bindir/pg_ctl" -D "$PGDATA" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
	trap cluster_stop EXIT
}

cluster_stop() {
	[ -n "${CLUSTER_DIR:-}" ] || return 0
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$CLUSTER_DIR"
	CLUSTER_DIR=
}
