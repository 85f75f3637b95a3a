#!/usr/bin/env bash
# The finlive demo: a short live story on a throwaway cluster, in under a
# minute.  Run as root on Debian 12:  bash demo/run.sh
#
# It builds and installs finlive, starts a private PostgreSQL (the installed
# major version, 15 to 19; FINLIVE_PG_VERSION=N chooses: test/deps.sh) with finlive
# preloaded, creates an orchestrator-like schema (tasks, agent_runs, jobs),
# registers it as a reaper target whose on_reap records each "advance", and
# then plays the incident finlive exists for, and its neighbours.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=test/deps.sh
. "$here/test/deps.sh"
# shellcheck source=test/cluster.sh
. "$here/test/cluster.sh"
finlive_install_deps
finlive_want_cmd psql "postgresql-client-$PG_MAJOR"
finlive_install_wanted

echo "building and installing finlive..."
make -C "$here" -s PG_CONFIG="$PG_CONFIG" >/dev/null
make -C "$here" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
make -C "$here" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null

PGPORT=${PGPORT:-54391} cluster_start \
	"finlive.naptime = 2000" \
	"finlive.restart_grace = 0" \
	"log_min_messages = warning"

# Elapsed seconds since a "date +%s%N" stamp, in bash integer arithmetic.
since() { local d=$(( $(date +%s%N) - $1 )); printf '%d.%03d' $(( d / 1000000000 )) $(( d % 1000000000 / 1000000 )); }
T0=$(date +%s%N)
say() { printf '\n[%5.1fs] %s\n' "$(since "$T0")" "$*"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
show() { printf '          %s\n' "$1"; psql -X -q -P pager=off -v ON_ERROR_STOP=1 -c "$1" | sed 's/^/          /'; }

# Long-lived client sessions (a finalizer, a worker) are psql processes fed
# through a FIFO, so they sit idle between commands like a real client.
declare -A SESSION_FD SESSION_PID
session_open() {
	local name=$1 fifo="$CLUSTER_DIR/$1.in"
	mkfifo "$fifo"
	: >"$CLUSTER_DIR/$name.out"		# before session_run counts its lines
	psql -X -q -At <"$fifo" >>"$CLUSTER_DIR/$name.out" 2>&1 &
	SESSION_PID[$name]=$!
	disown "$!"				# its SIGKILL is part of the story, not an error
	exec {fd}>"$fifo"
	SESSION_FD[$name]=$fd
}
session_run() {			# session_run NAME SQL: run, wait for the reply line
	local name=$1 out="$CLUSTER_DIR/$1.out" n
	n=$(wc -l <"$out")
	echo "$2" >&"${SESSION_FD[$name]}"
	until [ "$(wc -l <"$out")" -gt "$n" ]; do sleep 0.02; done
	tail -n 1 "$out"
}
wait_for() {			# wait_for SQL EXPECTED: poll until the query answers EXPECTED
	local i
	for i in $(seq 1 1500); do
		[ "$(q "$1")" = "$2" ] && return 0
		sleep 0.02
	done
	echo "timed out waiting for: $1 = $2" >&2
	return 1
}

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION finlive;
CREATE TABLE tasks (id bigint PRIMARY KEY, branch text, stage text NOT NULL);
CREATE TABLE agent_runs (id bigint PRIMARY KEY, task_id bigint, agent text,
                         finished_at timestamptz, exit_code integer);
CREATE TABLE jobs (id bigint PRIMARY KEY, agent text, task_id bigint, run_id bigint,
                   status text NOT NULL, attempts integer NOT NULL DEFAULT 0,
                   max_attempts integer NOT NULL DEFAULT 2, started_at timestamptz);
CREATE INDEX jobs_running ON jobs (id) WHERE status = 'running';
-- The application's "advance the stage" step, called once per reap.
CREATE TABLE advances (at timestamptz DEFAULT clock_timestamp(), job_id bigint,
                       tier integer, new_status text);
CREATE FUNCTION record_advance(job bigint, tier integer, status text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.advances (job_id, tier, new_status) VALUES (job, tier, status) $$;
SELECT finlive_register('jobs', 'agent_runs', 'tasks',
                        on_reap => 'record_advance(bigint,integer,text)',
                        claim_owned => true);
SQL
echo "finlive installed; target 'jobs' registered (claim_owned, on_reap = record_advance)."
echo "worker: finlive.naptime = 2 s, finalize_grace = 300 s, claim_grace = 30 s, max_running = 5400 s"

# ---------------------------------------------------------------------------
say "1. Ownership is a session lock every session can see"
session_open finalizer
t1=$(session_run finalizer "SELECT finlive_mark(1, 101, 'deploy-staging');")
echo "          finalizer session marks job 1 -> token $t1"
show "SELECT finlive_is_active(1) AS active, finlive_mark(1) AS second_mark_gets FROM (SELECT 1) s"
pid=$(q "SELECT pid FROM finlive_owners WHERE job_id = 1")
echo "          terminating the finalizer's backend (pid $pid)"
q "SELECT pg_terminate_backend($pid)" >/dev/null
wait_for "SELECT finlive_is_active(1)" f
show "SELECT finlive_is_active(1) AS active_after_terminate"
t2=$(q "SELECT finlive_mark(1, 102, 'deploy-staging')")
echo "          a new owner marks job 1 -> token $t2 (greater: $([ "$t2" -gt "$t1" ] && echo yes || echo NO))"
q "SELECT finlive_clear(1)" >/dev/null

# ---------------------------------------------------------------------------
say "2. The incident: a live finalizer holds a deploy-staging job past the grace"
q "INSERT INTO tasks VALUES (10, 'feature/orch113', 'deploy-staging');
   INSERT INTO agent_runs VALUES (10, 10, 'deployer', now() - interval '10 minutes', 0);
   INSERT INTO jobs (id, agent, task_id, run_id, status, started_at)
        VALUES (10, 'deployer', 10, 10, 'running', now() - interval '15 minutes')"
session_open monitor
session_run monitor "SELECT finlive_mark(10, 10, 'deploy-staging');" >/dev/null
echo "          exit code stamped 10 minutes ago; the monitor still runs merge gates and owns job 10"
wait_for "SELECT finalizer_defers_total > 0 FROM finlive_stats" t
show "SELECT id, status, (SELECT finalizer_defers_total FROM finlive_stats) AS defers, (SELECT count(*) FROM advances) AS advances FROM jobs WHERE id = 10"
echo "          the reaper deferred: no second finalization while the first one is alive"
show "SELECT finlive_explain('jobs', 10) ->> 'reason' AS why_job_10_is_not_reaped"

# ---------------------------------------------------------------------------
say "3. The finalizer's process dies (SIGKILL of the client)"
kill -9 "${SESSION_PID[monitor]}"
k0=$(date +%s%N)
wait_for "SELECT status FROM jobs WHERE id = 10" done
printf '          job 10 finalized by the worker %.2f s after the kill (naptime is 2 s)\n' \
	"$(since "$k0")"
show "SELECT job_id, tier, new_status FROM advances WHERE job_id = 10"

# ---------------------------------------------------------------------------
say "4. A hung job: alive but running for 2 hours, past finlive.max_running"
q "INSERT INTO tasks VALUES (20, 'feature/hang', 'testing');
   INSERT INTO agent_runs VALUES (20, 20, 'tester', NULL, NULL);
   INSERT INTO jobs (id, agent, task_id, run_id, status, started_at)
        VALUES (20, 'tester', 20, 20, 'running', now() - interval '2 hours')"
session_open hung
session_run hung "SELECT finlive_mark(20, 20, 'testing');" >/dev/null
wait_for "SELECT status FROM jobs WHERE id = 20" queued
show "SELECT id, status, attempts FROM jobs WHERE id = 20"
echo "          the Tier-3 backstop requeued it although its owner is still connected"

# ---------------------------------------------------------------------------
say "5. A worker claims a job, then crashes before its run has an exit code"
q "INSERT INTO tasks VALUES (30, 'feature/crash', 'development');
   INSERT INTO agent_runs VALUES (30, 30, 'developer', NULL, NULL);
   INSERT INTO jobs (id, agent, task_id, run_id, status, started_at)
        VALUES (30, 'developer', 30, 30, 'running', now() - interval '1 minute')"
session_open worker
session_run worker "SELECT finlive_mark(30, 30, 'development');" >/dev/null
sleep 2.5
show "SELECT id, status FROM jobs WHERE id = 30"
echo "          still running while its claimer lives; now SIGKILL the claimer"
kill -9 "${SESSION_PID[worker]}"
wait_for "SELECT status FROM jobs WHERE id = 30" queued
show "SELECT id, status, attempts FROM jobs WHERE id = 30"
echo "          Tier-1 requeued the dead worker's job"

# ---------------------------------------------------------------------------
say "6. The kill-switch: finlive.enabled = off, by reload"
q "INSERT INTO tasks VALUES (40, 'feature/switch', 'deploy-staging');
   INSERT INTO agent_runs VALUES (40, 40, 'deployer', now() - interval '10 minutes', 0);
   INSERT INTO jobs (id, agent, task_id, run_id, status, started_at)
        VALUES (40, 'deployer', 40, 40, 'running', now() - interval '15 minutes')"
session_open switch
session_run switch "SELECT finlive_mark(40, 40, 'deploy-staging');" >/dev/null
d0=$(q "SELECT finalizer_defers_total FROM finlive_stats")
wait_for "SELECT finalizer_defers_total > $d0 FROM finlive_stats" t
show "SELECT id, status, finlive_is_active(id) AS owned FROM jobs WHERE id = 40"
q "ALTER SYSTEM SET finlive.enabled = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
wait_for "SELECT status FROM jobs WHERE id = 40" done
show "SELECT id, status, finlive_is_active(id) AS owned FROM jobs WHERE id = 40"
echo "          with the switch off the reaper behaves as before finlive: it finalized a live owner's job"
q "ALTER SYSTEM RESET finlive.enabled" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null

# ---------------------------------------------------------------------------
say "7. What an operator sees"
show "SELECT finlive_snapshot()"
show "SELECT ticks, reaped_total, reaped_tier1, reaped_tier2, reaped_tier3, finalizer_defers_total, errors_total, owners_active FROM finlive_stats"
show "SELECT job_id, tier, old_status, new_status, owner_pid IS NOT NULL AS had_owner FROM finlive_reap_log ORDER BY at"
say "done"
