"""Through a real PgBouncer: session pooling holds ownership, transaction
pooling cannot, and the client refuses it instead of losing ownership
silently.  run-tests.sh starts PgBouncer with one database entry per mode,
both to the worker's database."""

import time

import pytest

import finlive
from conftest import query, value


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def owners(direct, job_id):
    return query(direct, "SELECT pid FROM finlive_owners WHERE job_id = %s", (job_id,))


def test_transaction_pooling_is_refused_by_connect(bouncer_tx_dsn, worker_dsn, connections):
    with pytest.raises(finlive.SessionPoolingError) as err:
        finlive.connect(bouncer_tx_dsn, driver=connections.driver.name)
    message = str(err.value)
    assert "transaction" in message and "session-level ownership cannot hold" in message
    assert "pool_mode = session" in message


def test_transaction_pooling_is_refused_before_marking(bouncer_tx_dsn, worker_dsn, connections):
    direct = connections(worker_dsn)
    pooled = connections(bouncer_tx_dsn)
    with pytest.raises(finlive.SessionPoolingError):
        with finlive.owned(pooled, 2001, stage="deploy-staging"):
            pytest.fail("the block must not run through a transaction pool")
    with pytest.raises(finlive.SessionPoolingError):
        finlive.mark(pooled, 2001)
    with pytest.raises(finlive.SessionPoolingError):
        finlive.check_session(pooled)
    # Nothing was marked: no lock left behind on a pooled server session.
    assert owners(direct, 2001) == []
    assert value(direct, "SELECT finlive_is_active(2001)") is False


def test_what_the_refusal_prevents(bouncer_tx_dsn, worker_dsn, connections):
    """Marking by hand through the transaction pool 'works', and the lock
    then outlives the client: it stays with a server session that PgBouncer
    hands to other clients, so the job looks owned by a live finalizer
    forever and the reaper defers it for good."""
    direct = connections(worker_dsn)
    pooled = connections(bouncer_tx_dsn)
    token = value(pooled, "SELECT finlive_mark(2002)")
    assert token > 0
    pooled.close()                                     # the client is gone
    time.sleep(0.5)
    server_pids = owners(direct, 2002)
    assert len(server_pids) == 1, "the lock outlived its client"
    assert value(direct, "SELECT finlive_is_active(2002)") is True
    # Clean up the pooled server session that kept the lock.
    query(direct, "SELECT pg_terminate_backend(%s, 10000)", (server_pids[0][0],))
    assert value(direct, "SELECT finlive_is_active(2002)") is False


def test_session_pooling_holds_ownership(bouncer_session_dsn, worker_dsn, connections):
    direct = connections(worker_dsn)
    conn = connections.finlive(bouncer_session_dsn)
    server_pid, _ = finlive.check_session(conn)
    # Behind PgBouncer the protocol-level pid is PgBouncer's own, not the server's.
    assert connections.driver.backend_pid(conn) != server_pid
    with finlive.owned(conn, 2003, stage="deploy-staging") as token:
        assert owners(direct, 2003) == [(server_pid,)]
        # Other clients of the same pool never get this server session.
        for _ in range(3):
            other = connections(bouncer_session_dsn)
            assert value(other, "SELECT pg_backend_pid()") != server_pid
            assert value(other, "SELECT finlive_fence(2003, %s)", (token,)) is True
    assert value(direct, "SELECT finlive_is_active(2003)") is False


def test_session_pool_reset_ends_ownership_when_the_client_leaves(bouncer_session_dsn,
                                                                  worker_dsn, connections):
    direct = connections(worker_dsn)
    conn = finlive.connect(bouncer_session_dsn, driver=connections.driver.name)
    assert finlive.mark(conn, 2004) > 0
    conn.close()        # PgBouncer resets the server session (DISCARD ALL)
    assert wait_for(lambda: value(direct, "SELECT finlive_is_active(2004)") is False)


def test_fenced_finalize_may_use_a_transaction_pool(bouncer_tx_dsn, worker_dsn, connections):
    """The fence checks the owner, not the caller: the owner holds the job on
    a direct connection, the final write goes through the transaction pool."""
    direct = connections(worker_dsn)
    schema = "pgb_fence"
    query(direct, "SET client_min_messages = warning")
    query(direct, "DROP SCHEMA IF EXISTS %s CASCADE" % schema)
    query(direct, "CREATE SCHEMA %s" % schema)
    query(direct, "CREATE TABLE %s.jobs (id bigint PRIMARY KEY, status text)" % schema)
    query(direct, "INSERT INTO %s.jobs VALUES (2005, 'running')" % schema)
    try:
        owner = connections.finlive(worker_dsn)
        pooled = connections(bouncer_tx_dsn)
        with finlive.owned(owner, 2005) as token:
            assert finlive.fenced_finalize(pooled, 2005, token,
                                           jobs_table=(schema, "jobs")) is True
        assert value(direct, "SELECT status FROM %s.jobs" % schema) == "done"
        query(direct, "UPDATE %s.jobs SET status = 'running'" % schema)
        # A stale token is refused there too.
        assert finlive.fenced_finalize(pooled, 2005, token,
                                       jobs_table=(schema, "jobs")) is False
    finally:
        query(direct, "DROP SCHEMA %s CASCADE" % schema)


def test_probe_failure_is_a_refusal_not_a_guess(bouncer_session_dsn, connections):
    conn = connections(bouncer_session_dsn)
    with pytest.raises(finlive.SessionPoolingError) as err:
        finlive.check_session(conn, probe_dsn="host=/nonexistent port=1 dbname=nothing")
    assert "could not be checked" in str(err.value)


def test_fenced_finalize_through_a_transaction_pool_many_times(bouncer_tx_dsn, worker_dsn,
                                                               connections):
    """psycopg 3 prepares a statement run five times on one connection, and a
    prepared statement does not survive a transaction pool: finlive's own
    statements are never prepared."""
    direct = connections(worker_dsn)
    query(direct, "SET client_min_messages = warning")
    query(direct, "DROP TABLE IF EXISTS pgb_fence_many")
    query(direct, "CREATE TABLE pgb_fence_many (id bigint PRIMARY KEY, status text)")
    try:
        owner = connections.finlive(worker_dsn)
        pooled = connections(bouncer_tx_dsn)
        for job in range(2010, 2020):
            query(direct, "INSERT INTO pgb_fence_many VALUES (%s, 'running')", (job,))
            with finlive.owned(owner, job) as token:
                assert finlive.fenced_finalize(pooled, job, token,
                                               jobs_table="pgb_fence_many") is True
        assert value(direct, "SELECT count(*) FROM pgb_fence_many WHERE status = 'done'") == 10
    finally:
        query(direct, "DROP TABLE pgb_fence_many")
