#!/usr/bin/env bash
# The finlive chaos run: a simulated orchestrator (client processes with
# finalizer threads over real connections) in two databases with different
# reaper policies, each reaped by its own reaper (finlive.database = '*', the
# default), under injected faults, with invariants checked at the end.  Run
# as root on Debian 12:
#
#   bash test/chaos/run.sh                  # CHAOS_MODE=short (CI): about 3 min
#   CHAOS_MODE=long bash test/chaos/run.sh  # >= 10,000 jobs and >= 500 faults (about 15 min)
#
# Knobs (environment): CHAOS_SEED, CHAOS_PROCS, CHAOS_THREADS, CHAOS_DURATION,
# CHAOS_MIN_JOBS, CHAOS_MIN_FAULTS, CHAOS_FAULT_INTERVAL, CHAOS_MAX_DURATION,
# PGPORT (default 56431), FINLIVE_SKIP_INSTALL=1 (finlive already installed).
# The figures and invariants are printed at the end; exit status 1 when any
# invariant is violated (the server log is then kept under /tmp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/chaos/common.sh
. "$here/common.sh"
# shellcheck source=test/cluster.sh
. "$root/test/cluster.sh"

start=$(date +%s)
chaos_deps
chaos_install_finlive

export PGPORT=${PGPORT:-56431}
# track_commit_timestamp: the NOTIFY check orders reaps and the listeners'
# pings by commit time.  Room for the launcher, a reaper per database and
# parallel query.
cluster_start \
	"track_commit_timestamp = on" \
	"max_worker_processes = 16" \
	"max_connections = 120" \
	"tcp_keepalives_idle = 60" \
	"log_line_prefix = '%m [%p] %q%a '" \
	"log_timezone = 'UTC'" \
	"restart_after_crash = on"
trap 'status=$?; if [ $status -ne 0 ] && [ -n "${CLUSTER_DIR:-}" ]; then
        keep=/tmp/finlive-chaos-$(date +%Y%m%d-%H%M%S).log
        cp "$CLUSTER_DIR/server.log" "$keep" 2>/dev/null && echo "server log kept in $keep"
      fi; cluster_stop' EXIT
export CHAOS_SERVER_LOG=$CLUSTER_DIR/server.log
export CHAOS_MODE=${CHAOS_MODE:-short}

set +e
"$PY" -u "$here/chaos.py" driver
rc=$?
set -e
echo "chaos: mode $CHAOS_MODE, exit $rc, $(( $(date +%s) - start )) s wall clock"
exit $rc
