"""finlive.ReapListener: NOTIFY finlive_reaped as callbacks."""

import threading
import time

import finlive
from conftest import query, value


def reap(conn):
    query(conn, "SET finlive.restart_grace = 0")
    return query(conn, "SELECT target::text, job_id, tier, action FROM finlive_reap_once() "
                       "ORDER BY job_id")


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_reaps_become_callbacks(app, quiet_dsn, connections):
    got = []
    lock = threading.Lock()

    def on_reap(event):
        # The reap has committed: its new status is visible.
        status = app.status(event.job_id) if event.target == app.jobs else None
        with lock:
            got.append((event, status))

    with finlive.ReapListener(quiet_dsn, on_reap, targets={app.jobs},
                              driver=connections.driver.name) as listener:
        app.add_job(11, stage="testing", exit_code=0)                 # Tier-2 -> done
        app.add_job(12, stage="testing", exit_code=1)                 # Tier-2 -> queued
        app.add_job(13, stage="testing", exit_code=None,
                    started_ago="3 hours")                            # Tier-3 -> queued
        reaper = connections(quiet_dsn)
        actions = [r for r in reap(reaper) if r[0] == app.jobs]
        assert [(r[1], r[3]) for r in actions] == [(11, "done"), (12, "queued"), (13, "queued")]
        assert wait_until(lambda: len(got) == 3)
        assert listener.delivered == 3
    events = sorted(got, key=lambda g: g[0].job_id)
    assert [(e.target, e.job_id, e.tier, e.status, s) for e, s in events] == [
        (app.jobs, 11, 2, "done", "done"),
        (app.jobs, 12, 2, "queued", "queued"),
        (app.jobs, 13, 3, "queued", "queued"),
    ]
    reaper_pid = value(reaper, "SELECT pg_backend_pid()")
    assert all(e.sender_pid == reaper_pid for e, _ in events)


def test_a_failing_callback_does_not_stop_the_listener(app, quiet_dsn, connections):
    got = []

    def on_reap(event):
        if event.job_id == 21:
            raise ValueError("application bug")
        got.append(event.job_id)

    reaper = connections(quiet_dsn)
    with finlive.ReapListener(quiet_dsn, on_reap, targets={app.jobs},
                              driver=connections.driver.name) as listener:
        app.add_job(21, stage="testing")
        reap(reaper)
        assert wait_until(lambda: listener.callback_errors == 1)
        app.add_job(22, stage="testing")
        reap(reaper)
        assert wait_until(lambda: got == [22])


def test_polling_without_a_thread(app, quiet_dsn, connections):
    got = []
    listener = finlive.ReapListener(quiet_dsn, got.append, targets={app.jobs},
                                    driver=connections.driver.name)
    try:
        listener.connect()
        assert listener.poll(0.1) == []
        app.add_job(31, stage="testing")
        reap(connections(quiet_dsn))
        events = []
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            events = listener.poll(1.0)
        assert [(e.job_id, e.status) for e in events] == [(31, "done")]
        assert [e.job_id for e in got] == [31]
    finally:
        listener.close()


def test_the_listener_reconnects(app, quiet_dsn, connections):
    got = []
    gaps = []
    admin = connections(quiet_dsn)
    listener = finlive.ReapListener(quiet_dsn, got.append, targets={app.jobs},
                                    driver=connections.driver.name, on_reconnect=gaps.append, reconnect_delay=0.2)
    with listener:
        pid = value(admin, "SELECT pid FROM pg_stat_activity "
                           "WHERE application_name = 'finlive-listener' "
                           "ORDER BY backend_start DESC LIMIT 1")
        query(admin, "SELECT pg_terminate_backend(%s, 10000)", (pid,))
        assert wait_until(lambda: len(gaps) == 1)
        app.add_job(41, stage="testing")
        reap(admin)
        assert wait_until(lambda: [e.job_id for e in got] == [41])
    assert isinstance(gaps[0], float)


def test_a_dry_run_sends_nothing(app, quiet_dsn, connections):
    got = []
    reaper = connections(quiet_dsn)
    with finlive.ReapListener(quiet_dsn, got.append, targets={app.jobs},
                              driver=connections.driver.name):
        app.add_job(51, stage="testing")
        query(reaper, "SET finlive.dry_run = on")
        assert [r[1] for r in reap(reaper) if r[0] == app.jobs] == [51]
        query(reaper, "SET finlive.dry_run = off")
        time.sleep(0.5)
        assert got == []
