"""Worked example: the orchestrator's monitor and reaper, rewritten on finlive.

The original application (see the ORCH-113 tests) kept a process-local
registry of "finalizer owns job" marks, consulted by a reaper thread of the
same process.  Here:

* the **monitor** marks the job in PostgreSQL with :func:`finlive.owned` on
  its own dedicated connection, stamps the run's exit code, runs the long
  edge gates (security, merge-gate re-test, coverage, image freshness: minutes
  in real life), and finishes with :func:`finlive.fenced_finalize`, which
  advances the task's stage and marks the job done in one transaction, only
  if it still owns the job;
* the **reaper** is finlive's background worker: the application only
  registers its tables, with ``orch.gate_is_green`` (the read-only quality
  gate pre-evaluation) and ``orch.on_reap`` (the "advance the stage" step)
  as hooks.  While the monitor lives, a Tier-2 reap of its job is deferred:
  no second advance, no false rollback (incident ORCH-111).  When the
  monitor dies, its session ends, and the worker reaps the job at once,
  advancing the stage exactly once;
* a **listener** turns the reaper's notifications into log lines, and
  :func:`queue_status` is the old ``GET /queue`` (``finalizer_owned``,
  ``finalizer_defers_total``).

Command line (``python3 -m finlive.example [--dsn DSN] [--driver D] COMMAND``;
``--driver`` is ``psycopg2`` or ``psycopg``, by default psycopg2 when it is
installed, else psycopg 3; from the repository root too)::

    setup                       create schema orch and register it
    create-job [--stage S]      a running job with a task and an unfinished run
    finalize JOB [--exit-code N] [--gate-seconds S] [--gates-fail]
                                the monitor's finalization of one job
    status                      finalizer_owned / finalizer_defers_total / jobs
    demo                        both stories, end to end (needs the worker on
                                this database and finlive.finalize_grace <= 10s)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import finlive
from finlive.session import Connection

log = logging.getLogger("finlive.example")

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS orch;

CREATE TABLE IF NOT EXISTS orch.tasks (
    id             bigserial PRIMARY KEY,
    work_item_id   text,
    repo           text NOT NULL DEFAULT 'orchestrator',
    branch         text,
    stage          text NOT NULL,
    staging_status text                      -- what the quality gate reads
);
CREATE TABLE IF NOT EXISTS orch.agent_runs (
    id          bigserial PRIMARY KEY,
    task_id     bigint REFERENCES orch.tasks,
    agent       text NOT NULL,
    finished_at timestamptz,
    exit_code   integer
);
CREATE TABLE IF NOT EXISTS orch.jobs (
    id           bigserial PRIMARY KEY,
    agent        text NOT NULL,
    repo         text NOT NULL DEFAULT 'orchestrator',
    task_id      bigint REFERENCES orch.tasks,
    status       text NOT NULL DEFAULT 'queued',
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 2,
    run_id       bigint REFERENCES orch.agent_runs,
    pid          integer,
    started_at   timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_running ON orch.jobs (id) WHERE status = 'running';

-- Every stage change, with who made it: the monitor or the reaper.
CREATE TABLE IF NOT EXISTS orch.stage_events (
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    task_id    bigint NOT NULL,
    job_id     bigint NOT NULL,
    from_stage text NOT NULL,
    to_stage   text NOT NULL,
    by         text NOT NULL
);

-- STAGE_TRANSITIONS of the original application.
CREATE OR REPLACE FUNCTION orch.next_stage(stage text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE stage
             WHEN 'development'    THEN 'testing'
             WHEN 'testing'        THEN 'deploy-staging'
             WHEN 'deploy-staging' THEN 'deploy'
             WHEN 'deploy'         THEN 'done'
             ELSE stage
           END
$$;

-- _try_advance_stage: move the job's task to its next stage.
CREATE OR REPLACE FUNCTION orch.advance_stage(p_job_id bigint, p_by text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t orch.tasks;
BEGIN
    SELECT tk.* INTO t FROM orch.tasks tk JOIN orch.jobs j ON j.task_id = tk.id
     WHERE j.id = p_job_id FOR UPDATE OF tk;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE orch.tasks SET stage = orch.next_stage(t.stage) WHERE id = t.id;
    INSERT INTO orch.stage_events (task_id, job_id, from_stage, to_stage, by)
    VALUES (t.id, p_job_id, t.stage, orch.next_stage(t.stage), p_by);
    RETURN orch.next_stage(t.stage);
END;
$$;

-- The reaper's on_reap hook: a reap to 'done' advances the stage, once.
CREATE OR REPLACE FUNCTION orch.on_reap(job_id bigint, tier integer, status text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF status = 'done' THEN
        PERFORM orch.advance_stage(job_id, 'reaper tier ' || tier);
    END IF;
END;
$$;

-- _gate_is_green: the read-only quality-gate pre-evaluation.
CREATE OR REPLACE FUNCTION orch.gate_is_green(job_id bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT r.exit_code = 0 AND tk.staging_status = 'SUCCESS'
      FROM orch.jobs j
      JOIN orch.agent_runs r ON r.id = j.run_id
      JOIN orch.tasks tk ON tk.id = j.task_id
     WHERE j.id = $1
$$;
"""

REGISTER_SQL = """
SELECT finlive_register('orch.jobs', 'orch.agent_runs', 'orch.tasks',
                        on_reap => 'orch.on_reap(bigint,integer,text)',
                        gate => 'orch.gate_is_green(bigint)')
"""


def setup(conn: Connection, reset: bool = False) -> None:
    """Create the application's schema (``reset`` drops it first) and register it."""
    with finlive.session.autocommit(conn):
        with conn.cursor() as cur:
            if reset:
                cur.execute("SET client_min_messages = warning")
                cur.execute("DROP SCHEMA IF EXISTS orch CASCADE")
                cur.execute("RESET client_min_messages")
            cur.execute(SCHEMA_SQL)
            cur.execute(REGISTER_SQL)


def create_job(conn: Connection, stage: str = "deploy-staging", agent: str = "deployer",
               staging_status: str = "SUCCESS") -> int:
    """A claimed, running job with its task and its (unfinished) run."""
    with finlive.session.autocommit(conn):
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orch.tasks (work_item_id, branch, stage, staging_status) "
                        "VALUES ('ORCH-113', 'feature/orch113', %s, %s) RETURNING id",
                        (stage, staging_status))
            task_id = _one(cur)
            cur.execute("INSERT INTO orch.agent_runs (task_id, agent) VALUES (%s, %s) "
                        "RETURNING id", (task_id, agent))
            run_id = _one(cur)
            cur.execute("INSERT INTO orch.jobs (agent, task_id, status, run_id, started_at) "
                        "VALUES (%s, %s, 'running', %s, now()) RETURNING id",
                        (agent, task_id, run_id))
            return int(_one(cur))


def _one(cur: Any) -> Any:
    """The first column of the cursor's next row (the row must exist)."""
    row = cur.fetchone()
    assert row is not None
    return row[0]


class Monitor:
    """The live monitor's finalization of a finished agent run."""

    def __init__(self, dsn: str, driver: Optional[str] = None) -> None:
        # One dedicated connection per monitor: ownership is its session's.
        self.conn = finlive.connect(dsn, application_name="orch-monitor", driver=driver)

    def close(self) -> None:
        self.conn.close()

    def finalize(self, job_id: int, exit_code: int, edge_gates: Callable[[int], bool],
                 on_owned: Optional[Callable[[int], Any]] = None) -> str:
        """Stamp the run, run the edge gates while owning the job, finalize.

        Returns 'done', 'failed', or 'lost' (ownership or the job was lost
        meanwhile: nothing was written, do not merge).
        """
        with self.conn.cursor() as cur:
            cur.execute("SELECT j.run_id, tk.stage FROM orch.jobs j "
                        "JOIN orch.tasks tk ON tk.id = j.task_id WHERE j.id = %s", (job_id,))
            row = cur.fetchone()
            assert row is not None, "no job %s" % job_id
            run_id, stage = row

        # Own the job first, then stamp the exit code: the reaper never sees
        # a finished run without its owner.
        with finlive.owned(self.conn, job_id, run_id, stage) as token:
            with self.conn.cursor() as cur:
                cur.execute("UPDATE orch.agent_runs SET finished_at = now(), exit_code = %s "
                            "WHERE id = %s", (exit_code, run_id))
            if on_owned is not None:
                on_owned(token)

            green = exit_code == 0 and edge_gates(job_id)   # minutes, in real life

            def advance(cur: Any) -> None:
                cur.execute("SELECT orch.advance_stage(%s, 'monitor')", (job_id,))

            finalized = finlive.fenced_finalize(
                self.conn, job_id, token, jobs_table="orch.jobs",
                status="done" if green else "failed",
                finalize=advance if green else None)
            if not finalized:
                log.warning("job %s: ownership lost before the final write; not merging", job_id)
                return "lost"
            # Only now, with the state committed under ownership: merge, deploy...
            return "done" if green else "failed"


def queue_status(conn: Connection) -> Dict[str, Any]:
    """The old GET /queue: owned finalizations, defers, and the jobs by status."""
    with finlive.session.autocommit(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT finlive_snapshot()")
            snap = _one(cur)
            cur.execute("SELECT status, count(*) FROM orch.jobs GROUP BY status ORDER BY status")
            jobs = dict(cur.fetchall())
    return {
        "finalizer_owned": snap["jobs"],
        "finalizer_defers_total": snap["finalizer_defers_total"],
        "reaped_total": snap["reaped_total"],
        "jobs": jobs,
    }


def _fetch(conn: Connection, query: str, args: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
    with finlive.session.autocommit(conn):
        with conn.cursor() as cur:
            cur.execute(query, args or None)
            return list(cur.fetchall())


# -- command line -------------------------------------------------------------

def _cmd_finalize(args: argparse.Namespace) -> int:
    def gates(job_id: int) -> bool:
        print("job %s: running edge gates for %.1fs" % (job_id, args.gate_seconds), flush=True)
        time.sleep(args.gate_seconds)
        return not args.gates_fail

    monitor = Monitor(args.dsn, args.driver)
    result = monitor.finalize(
        args.job, args.exit_code, gates,
        on_owned=lambda token: print("owned job %s token %s pid %s" % (
            args.job, token, os.getpid()), flush=True))
    print("job %s: %s" % (args.job, result), flush=True)
    monitor.close()
    return 0 if result != "lost" else 3


def monitor_command(dsn: str, job_id: int, gate_seconds: float,
                    driver: Optional[str] = None) -> List[str]:
    """The command line of a monitor process finalizing ``job_id``."""
    command = [sys.executable, "-m", "finlive.example", "--dsn", dsn]
    if driver is not None:
        command += ["--driver", driver]
    return command + ["finalize", str(job_id), "--gate-seconds", str(gate_seconds)]


def _spawn_monitor(dsn: str, job_id: int, gate_seconds: float,
                   driver: Optional[str]) -> "subprocess.Popen[str]":
    proc = subprocess.Popen(monitor_command(dsn, job_id, gate_seconds, driver),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("owned job"):
        proc.kill()
        raise RuntimeError("the monitor did not take ownership: %r" % line)
    return proc


def _wait_for(what: str, predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError("timed out after %ss waiting for %s" % (timeout, what))


def _cmd_demo(args: argparse.Namespace) -> int:
    conn = finlive.connect(args.dsn, application_name="orch-demo", driver=args.driver)
    grace, naptime = _fetch(
        conn, "SELECT extract(epoch FROM current_setting('finlive.finalize_grace')::interval),"
              "       extract(epoch FROM current_setting('finlive.naptime')::interval)")[0]
    grace, naptime = float(grace), float(naptime)
    if grace > 10 or naptime > 5:
        print("demo: finlive.finalize_grace is %ss and finlive.naptime %ss; the demo needs "
              "at most 10s and 5s:\n  ALTER SYSTEM SET finlive.finalize_grace = 2;\n"
              "  ALTER SYSTEM SET finlive.naptime = 1000;\n  SELECT pg_reload_conf();"
              % (grace, naptime))
        return 2
    patience = grace + naptime + 15     # until the worker has seen a job past the grace
    setup(conn, reset=True)
    reaps: List[finlive.ReapEvent] = []
    listener = finlive.ReapListener(args.dsn, reaps.append, targets={"orch.jobs"},
                                    driver=args.driver)
    listener.start()

    def defers() -> int:
        return int(queue_status(conn)["finalizer_defers_total"])

    try:
        # Story 1, incident ORCH-111: a long, live finalization past the grace.
        job = create_job(conn)
        defers_before = defers()
        print("1. job %s at deploy-staging: the monitor finalizes it with edge gates "
              "longer than the grace (%ss)" % (job, grace))
        proc = _spawn_monitor(args.dsn, job, grace + 2 * naptime + 2, args.driver)
        _wait_for("a defer", lambda: defers() > defers_before, patience)
        print("   the reaper saw the finished run past the grace and deferred: %s"
              % json.dumps(queue_status(conn)))
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        events = _fetch(conn, "SELECT from_stage, to_stage, by FROM orch.stage_events "
                              "WHERE job_id = %s", (job,))
        status = _fetch(conn, "SELECT status FROM orch.jobs WHERE id = %s", (job,))[0][0]
        print("   monitor: %s; job %s; stage changes: %s" % (out.strip().splitlines()[-1],
                                                           status, events))
        assert status == "done", status
        assert events == [("deploy-staging", "deploy", "monitor")], events

        # Story 2: the monitor dies in the middle of its finalization.
        job2 = create_job(conn)
        defers_before = defers()
        print("2. job %s: the monitor is killed in the middle of its finalization" % job2)
        proc = _spawn_monitor(args.dsn, job2, 600, args.driver)
        _wait_for("a defer", lambda: defers() > defers_before, patience)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _wait_for("the reap", lambda: _fetch(
            conn, "SELECT status <> 'running' FROM orch.jobs WHERE id = %s", (job2,))[0][0], 30)
        took = time.monotonic() - killed_at
        events = _fetch(conn, "SELECT from_stage, to_stage, by FROM orch.stage_events "
                              "WHERE job_id = %s", (job2,))
        status = _fetch(conn, "SELECT status FROM orch.jobs WHERE id = %s", (job2,))[0][0]
        _wait_for("the notification", lambda: any(e.job_id == job2 for e in reaps), 10)
        print("   reaped %.2fs after the monitor died: job %s, stage changes %s, "
              "notification %s" % (took, status, events,
                                   [e for e in reaps if e.job_id == job2][0]))
        assert status == "done", status
        assert events == [("deploy-staging", "deploy", "reaper tier 2")], events
        assert not any(e.job_id == job for e in reaps), "job %s was reaped" % job
        print("demo: ok")
        return 0
    finally:
        listener.stop()
        conn.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="finlive-example",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("FINLIVE_DSN", ""),
                        help="libpq connection string (default: $FINLIVE_DSN, then libpq's "
                             "PG* variables)")
    parser.add_argument("--driver", choices=("psycopg2", "psycopg"),
                        default=os.environ.get("FINLIVE_DRIVER") or None,
                        help="the PostgreSQL driver (default: $FINLIVE_DRIVER, then psycopg2 "
                             "when it is installed, else psycopg 3)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup")
    p = sub.add_parser("create-job")
    p.add_argument("--stage", default="deploy-staging")
    p = sub.add_parser("finalize")
    p.add_argument("job", type=int)
    p.add_argument("--exit-code", type=int, default=0)
    p.add_argument("--gate-seconds", type=float, default=1.0)
    p.add_argument("--gates-fail", action="store_true")
    sub.add_parser("status")
    sub.add_parser("demo")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    if args.command == "finalize":
        return _cmd_finalize(args)
    if args.command == "demo":
        return _cmd_demo(args)
    conn = finlive.connect(args.dsn, application_name="orch-cli", driver=args.driver)
    try:
        if args.command == "setup":
            setup(conn)
            print("schema orch registered")
        elif args.command == "create-job":
            print(create_job(conn, stage=args.stage))
        elif args.command == "status":
            print(json.dumps(queue_status(conn), indent=2))
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
