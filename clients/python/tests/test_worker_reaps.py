"""The worked example against finlive's background worker.

The monitor runs in a child process (``python3 -m finlive.example finalize``),
exactly as the application would.  The worker reaps the database of
FINLIVE_TEST_DSN; run-tests.sh configures finalize_grace = 2 s and a short
naptime.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

import finlive
from finlive import example
from conftest import query, value


@pytest.fixture
def orch(worker_dsn, connections):
    conn = connections.finlive(worker_dsn, application_name="orch-test")
    example.setup(conn, reset=True)
    return conn


def spawn_monitor(dsn, job_id, gate_seconds, driver):
    proc = subprocess.Popen(example.monitor_command(dsn, job_id, gate_seconds, driver.name),
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("owned job %d token " % job_id), line
    return proc, int(line.split()[4])


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    return None


def defers(conn):
    return value(conn, "SELECT finalizer_defers_total FROM finlive_stats")


def stage_events(conn, job_id):
    return query(conn, "SELECT from_stage, to_stage, by FROM orch.stage_events "
                       "WHERE job_id = %s ORDER BY at", (job_id,))


def test_the_monitor_dies_mid_finalization_and_the_worker_reaps(worker_dsn, orch, driver):
    reaps = []
    with finlive.ReapListener(worker_dsn, reaps.append, targets={"orch.jobs"},
                              driver=driver.name):
        job = example.create_job(orch)
        before = defers(orch)
        proc, token = spawn_monitor(worker_dsn, job, gate_seconds=300, driver=driver)
        try:
            # The monitor owns the job, stamped the run, and is in its gates.
            owners = query(orch, "SELECT pid, token, stage FROM finlive_owners "
                                 "WHERE job_id = %s", (job,))
            assert [(o[1], o[2]) for o in owners] == [(token, "deploy-staging")]
            # Past the grace, the worker defers to the live monitor: no reap.
            assert wait_for(lambda: defers(orch) > before, 30), "the worker never deferred"
            assert value(orch, "SELECT status FROM orch.jobs WHERE id = %s", (job,)) == "running"
            assert stage_events(orch, job) == []
            running = query(orch, "SELECT guarded, owner_pid, state FROM finlive_running_jobs "
                                  "WHERE job_id = %s", (job,))
            assert running == [(True, owners[0][0], "idle")]
        finally:
            # The process dies in the middle of its finalization.
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        reaped = wait_for(lambda: value(orch, "SELECT status FROM orch.jobs WHERE id = %s "
                                              "AND status <> 'running'", (job,)), 15)
        took = time.monotonic() - killed_at
        assert reaped == "done", "the worker did not reap the job of the dead monitor"
        print("reaped %.2fs after the monitor was killed" % took)
        # The reaper advanced the stage, exactly once, through on_reap.
        assert stage_events(orch, job) == [("deploy-staging", "deploy", "reaper tier 2")]
        assert value(orch, "SELECT stage FROM orch.tasks t JOIN orch.jobs j ON j.task_id = t.id "
                           "WHERE j.id = %s", (job,)) == "deploy"
        log = query(orch, "SELECT tier, old_status, new_status, owner_pid, dry_run "
                          "FROM finlive_reap_log WHERE target = 'orch.jobs'::regclass "
                          "AND job_id = %s", (job,))
        assert log == [(2, "running", "done", None, False)]
        assert wait_for(lambda: [e for e in reaps if e.job_id == job], 10)
        event = [e for e in reaps if e.job_id == job][0]
        assert (event.target, event.tier, event.status) == ("orch.jobs", 2, "done")
        assert value(orch, "SELECT finlive_is_active(%s)", (job,)) is False


def test_a_live_monitor_finalizes_past_the_grace_without_a_second_advance(worker_dsn, orch,
                                                                          driver):
    """Incident ORCH-111: a finalization longer than the grace is deferred by
    the reaper and completed by its monitor, which advances the stage once."""
    job = example.create_job(orch)
    before = defers(orch)
    naptime = value(orch, "SELECT extract(epoch FROM current_setting('finlive.naptime')"
                          "::interval)")
    grace = value(orch, "SELECT extract(epoch FROM current_setting('finlive.finalize_grace')"
                        "::interval)")
    monitor = example.Monitor(worker_dsn, driver.name)
    try:
        def gates(job_id):
            # Longer than the grace plus a tick: the reaper sees it past the grace.
            assert wait_for(lambda: defers(orch) > before, float(grace + naptime) + 20)
            return True
        assert monitor.finalize(job, 0, gates) == "done"
    finally:
        monitor.close()
    assert value(orch, "SELECT status FROM orch.jobs WHERE id = %s", (job,)) == "done"
    assert stage_events(orch, job) == [("deploy-staging", "deploy", "monitor")]
    assert value(orch, "SELECT count(*) FROM finlive_reap_log WHERE job_id = %s "
                       "AND target = 'orch.jobs'::regclass", (job,)) == 0


def test_red_gates_fail_the_job_without_advancing(worker_dsn, orch, driver):
    job = example.create_job(orch, staging_status="FAILURE")
    monitor = example.Monitor(worker_dsn, driver.name)
    try:
        assert monitor.finalize(job, 0, lambda job_id: False) == "failed"
    finally:
        monitor.close()
    assert value(orch, "SELECT status FROM orch.jobs WHERE id = %s", (job,)) == "failed"
    assert stage_events(orch, job) == []


def test_queue_status_shows_owned_finalizations(worker_dsn, orch, driver):
    job = example.create_job(orch)
    proc, _ = spawn_monitor(worker_dsn, job, gate_seconds=1, driver=driver)
    try:
        status = example.queue_status(orch)
        assert job in status["finalizer_owned"]
        assert status["jobs"].get("running", 0) >= 1
    finally:
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.strip().endswith("job %d: done" % job)
    assert job not in example.queue_status(orch)["finalizer_owned"]


def test_the_demo_runs(worker_dsn, driver):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "finlive.example", "--dsn", worker_dsn,
                             "--driver", driver.name, "demo"],
                            capture_output=True, text=True, timeout=120, env=env)
    print(result.stdout)
    print(result.stderr)
    assert result.returncode == 0
    assert result.stdout.strip().endswith("demo: ok")
