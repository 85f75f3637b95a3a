"""finlive.owned / mark / clear / check_session on a direct connection."""

import pytest

import finlive
from conftest import query, value


def owner_row(conn, job_id):
    rows = query(conn, "SELECT pid, token, run_id, stage FROM finlive_owners WHERE job_id = %s",
                 (job_id,))
    return rows[0] if rows else None


def test_owned_yields_token_and_clears_on_exit(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    observer = connections(quiet_dsn)
    pid = value(owner, "SELECT pg_backend_pid()")
    with finlive.owned(owner, 1001, run_id=7, stage="deploy-staging") as token:
        assert isinstance(token, int) and token > 0
        assert owner_row(observer, 1001) == (pid, token, 7, "deploy-staging")
        assert value(observer, "SELECT finlive_fence(1001, %s)", (token,)) is True
    assert owner_row(observer, 1001) is None
    assert value(observer, "SELECT finlive_is_active(1001)") is False


def test_owned_clears_when_the_block_raises(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    observer = connections(quiet_dsn)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with finlive.owned(owner, 1002):
            assert value(observer, "SELECT finlive_is_active(1002)") is True
            raise Boom()
    assert value(observer, "SELECT finlive_is_active(1002)") is False
    # The connection is still usable for the next job.
    with finlive.owned(owner, 1002) as token:
        assert token > 0


def test_another_live_owner_is_reported_not_waited_for(quiet_dsn, connections):
    first = connections.finlive(quiet_dsn)
    second = connections.finlive(quiet_dsn)
    first_pid = value(first, "SELECT pg_backend_pid()")
    with finlive.owned(first, 1003, stage="deploy-staging") as token:
        with pytest.raises(finlive.AlreadyOwned) as err:
            with finlive.owned(second, 1003):
                pytest.fail("the block must not run")
        assert err.value.job_id == 1003
        assert err.value.owner["pid"] == first_pid
        assert "owned by another live session" in str(err.value)
        # The failed attempt did not disturb the owner.
        assert value(second, "SELECT finlive_fence(1003, %s)", (token,)) is True
        assert finlive.mark(second, 1003) is None


def test_marking_again_keeps_the_token_and_one_clear_frees(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    token = finlive.mark(owner, 1004, 1, "build")
    assert finlive.mark(owner, 1004, 2, "deploy-staging") == token
    assert owner_row(owner, 1004)[2:] == (2, "deploy-staging")
    assert finlive.clear(owner, 1004) is True
    assert finlive.clear(owner, 1004) is False
    assert value(owner, "SELECT finlive_is_active(1004)") is False


def test_losing_ownership_inside_the_block_is_reported(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    with pytest.raises(finlive.OwnershipLost) as err:
        with finlive.owned(owner, 1005):
            # What a pooler's reset (DISCARD ALL) would do behind our back.
            query(owner, "SELECT pg_advisory_unlock_all()")
    assert err.value.job_id == 1005
    assert "no longer owned" in str(err.value)


def test_owner_session_terminated_in_the_block(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    admin = connections(quiet_dsn)
    pid = value(owner, "SELECT pg_backend_pid()")
    with pytest.raises(finlive.OwnershipLost) as err:
        with finlive.owned(owner, 1006):
            assert value(admin, "SELECT pg_terminate_backend(%s, 10000)", (pid,)) is True
    assert "ended" in str(err.value)
    assert value(admin, "SELECT finlive_is_active(1006)") is False


def test_a_connection_inside_a_transaction_is_refused(quiet_dsn, connections):
    conn = connections(quiet_dsn, autocommit=False)
    query(conn, "SELECT 1")          # opens a transaction
    with pytest.raises(finlive.FinliveError) as err:
        with finlive.owned(conn, 1007):
            pass
    assert "inside a transaction" in str(err.value)
    conn.rollback()


def test_a_non_autocommit_connection_is_left_as_it_was(quiet_dsn, connections):
    conn = connections(quiet_dsn, autocommit=False)
    with finlive.owned(conn, 1008) as token:
        assert token > 0
        assert conn.autocommit is False
        assert connections.driver.is_idle(conn)
    assert conn.autocommit is False
    assert value(conn, "SELECT finlive_is_active(1008)") is False
    conn.rollback()


def test_check_session_on_a_direct_connection(quiet_dsn, connections):
    conn = connections(quiet_dsn)
    pid, started = finlive.check_session(conn)
    assert pid == connections.driver.backend_pid(conn)
    assert started is not None
    # Cached, and re-checked cheaply.
    assert finlive.check_session(conn) == (pid, started)


def test_connect_sets_up_the_connection(quiet_dsn, connections):
    conn = connections.finlive(quiet_dsn, application_name="orch-monitor-7")
    assert conn.autocommit is True
    assert value(conn, "SHOW application_name") == "orch-monitor-7"
    assert connections.driver.parameters(conn).get("keepalives") == "1"
    assert type(conn).__module__.split(".")[0] == connections.driver.name


def test_null_and_privileges(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    assert finlive.mark(owner, None) is None
    assert finlive.clear(owner, None) is False
    # A role without EXECUTE on finlive_mark gets the server's error.
    admin = connections(quiet_dsn)
    query(admin, "DROP ROLE IF EXISTS finlive_py_nobody")
    query(admin, "CREATE ROLE finlive_py_nobody")
    try:
        query(owner, "SET ROLE finlive_py_nobody")
        with pytest.raises(connections.driver.errors.InsufficientPrivilege):
            finlive.mark(owner, 1009)
        query(owner, "RESET ROLE")
    finally:
        query(admin, "DROP ROLE finlive_py_nobody")
