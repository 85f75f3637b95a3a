#!/usr/bin/env bash
# The finlive fuzz pass: thousands of calls with bad input over every SQL
# function (finlive_register's policy arguments, finlive_explain and
# finlive_reap_errors included), and reaper targets and policies that change
# under the reaper's feet, against a throwaway cluster whose reaper ticks the
# postgres database every 20 ms (finlive.database = 'postgres': the "fuzz"
# database, where the calls are judged, has no reaper).  Run as root on
# Debian 12:
#
#   bash test/fuzz/run.sh          # about 1 to 2 minutes
#
# FUZZ_SEED=n repeats a run's choices; FUZZ_SCALE=0.2 .. 5 scales the number
# of random calls; FINLIVE_SKIP_INSTALL=1 when finlive is already installed;
# PGPORT (default 56432).  Prints figures; exit status 1 on any failed check
# (the server log is then kept under /tmp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/chaos/common.sh
. "$root/test/chaos/common.sh"
# shellcheck source=test/cluster.sh
. "$root/test/cluster.sh"

start=$(date +%s)
chaos_deps
chaos_install_finlive

export PGPORT=${PGPORT:-56432}
cluster_start \
	"finlive.database = 'postgres'" \
	"finlive.naptime = 20" \
	"finlive.restart_grace = 0" \
	"finlive.finalize_grace = 60" \
	"finlive.max_running = 7200" \
	"tcp_keepalives_idle = 60" \
	"max_locks_per_transaction = 256" \
	"log_line_prefix = '%m [%p] %q%a '"
trap 'status=$?; if [ $status -ne 0 ] && [ -n "${CLUSTER_DIR:-}" ]; then
        keep=/tmp/finlive-fuzz-$(date +%Y%m%d-%H%M%S).log
        cp "$CLUSTER_DIR/server.log" "$keep" 2>/dev/null && echo "server log kept in $keep"
      fi; cluster_stop' EXIT
export FUZZ_SERVER_LOG=$CLUSTER_DIR/server.log

set +e
"$PY" -u "$here/fuzz.py"
rc=$?
set -e
echo "fuzz: exit $rc, $(( $(date +%s) - start )) s wall clock"
exit $rc
