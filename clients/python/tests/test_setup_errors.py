"""A database or role that is not set up for finlive: the client says which
setup step is missing and what to run, with an exception of its own that is
also the driver's own error class (so existing ``except`` clauses still
catch it)."""

import pytest

import finlive
from conftest import query, value


def test_a_database_without_the_extension(noext_dsn, connections):
    conn = connections.finlive(noext_dsn)
    database = value(conn, "SELECT current_database()")
    with pytest.raises(finlive.ExtensionNotFound) as err:
        with finlive.owned(conn, 3001):
            pytest.fail("the block must not run")
    e = err.value
    assert isinstance(e, finlive.SetupError) and isinstance(e, finlive.FinliveError)
    assert isinstance(e, connections.driver.errors.UndefinedFunction)
    assert isinstance(e.__cause__, connections.driver.errors.UndefinedFunction)
    message = str(e)
    assert "finlive is not installed in database %s" % database in message
    assert "CREATE EXTENSION finlive;" in message
    assert "shared_preload_libraries" in message
    assert (e.function, e.database, e.schema) == ("finlive_mark", database, None)
    # The driver's own attributes read through to the server's error.
    if connections.driver.name == "psycopg2":
        assert e.pgcode == "42883"
    else:
        assert e.sqlstate == "42883"
    assert e.diag.message_primary.startswith("function finlive_mark(")
    # The connection is still usable, and the other calls say the same.
    with pytest.raises(finlive.ExtensionNotFound):
        finlive.clear(conn, 3001)
    assert value(conn, "SELECT 1") == 1


def test_the_extension_schema_off_the_search_path(quiet_dsn, connections):
    conn = connections.finlive(quiet_dsn)
    query(conn, "SET search_path = pg_catalog")
    with pytest.raises(finlive.ExtensionNotFound) as err:
        finlive.mark(conn, 3002)
    message = str(err.value)
    assert "installed in database finlive_quiet in schema public" in message
    assert "not on this session's search_path (pg_catalog)" in message
    assert "ALTER ROLE postgres SET search_path = pg_catalog, public;" in message
    assert err.value.schema == "public"


def test_a_role_without_the_grant(quiet_dsn, connections):
    owner = connections.finlive(quiet_dsn)
    admin = connections(quiet_dsn)
    query(admin, "DROP ROLE IF EXISTS \"finlive py nobody\"")
    query(admin, "CREATE ROLE \"finlive py nobody\"")
    try:
        query(owner, "SET ROLE \"finlive py nobody\"")
        with pytest.raises(finlive.MissingGrant) as err:
            finlive.mark(owner, 3003)
        e = err.value
        # Still the driver's error, as before finlive explained it.
        assert isinstance(e, connections.driver.errors.InsufficientPrivilege)
        assert isinstance(e, finlive.SetupError)
        message = str(e)
        assert "permission denied for function finlive_mark" in message
        assert ("GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), "
                "finlive_clear(bigint), finlive_clear_all() TO \"finlive py nobody\";"
                in message)
        assert "in database finlive_quiet" in message
        assert (e.function, e.role) == ("finlive_mark", '"finlive py nobody"')
        with pytest.raises(finlive.MissingGrant):
            with finlive.owned(owner, 3003):
                pytest.fail("the block must not run")
        query(owner, "RESET ROLE")
        # The GRANT the message names is all the role needs.
        query(admin, "GRANT EXECUTE ON FUNCTION finlive_mark(bigint, bigint, text), "
                     "finlive_clear(bigint), finlive_clear_all() TO \"finlive py nobody\"")
        query(owner, "SET ROLE \"finlive py nobody\"")
        with finlive.owned(owner, 3003) as token:
            assert token > 0
        query(owner, "RESET ROLE")
    finally:
        query(owner, "RESET ROLE")
        query(admin, "DROP OWNED BY \"finlive py nobody\"")
        query(admin, "DROP ROLE \"finlive py nobody\"")


def test_a_server_without_the_preload(nopreload_dsn, connections):
    conn = connections.finlive(nopreload_dsn)
    with pytest.raises(finlive.NotPreloaded) as err:
        with finlive.owned(conn, 3004):
            pytest.fail("the block must not run")
    e = err.value
    assert isinstance(e, finlive.SetupError)
    assert isinstance(e, connections.driver.errors.ObjectNotInPrerequisiteState)
    message = str(e)
    assert "started without finlive in shared_preload_libraries (it is now '')" in message
    assert "Add finlive to shared_preload_libraries in postgresql.conf" in message
    assert "restart the server" in message
    # The fence (a finlive function too) says the same, and writes nothing.
    query(conn, "CREATE TEMP TABLE np_jobs (id bigint PRIMARY KEY, status text)")
    query(conn, "INSERT INTO np_jobs VALUES (3004, 'running')")
    with pytest.raises(finlive.NotPreloaded):
        finlive.fenced_finalize(conn, 3004, 1, jobs_table="np_jobs")
    assert value(conn, "SELECT status FROM np_jobs") == "running"


def test_the_applications_own_errors_are_left_alone(quiet_dsn, connections):
    """A 42883 or 42501 about the application's own SQL is not a finlive setup error."""
    admin = connections(quiet_dsn)
    query(admin, "DROP TABLE IF EXISTS setup_err_jobs")
    query(admin, "CREATE TABLE setup_err_jobs (id bigint PRIMARY KEY, status text)")
    query(admin, "INSERT INTO setup_err_jobs VALUES (3005, 'running')")
    conn = connections.finlive(quiet_dsn)
    try:
        def finalize(cur):
            cur.execute("SELECT no_such_function_of_the_app(1)")

        with finlive.owned(conn, 3005) as token:
            with pytest.raises(connections.driver.errors.UndefinedFunction) as err:
                finlive.fenced_finalize(conn, 3005, token, jobs_table="setup_err_jobs",
                                        finalize=finalize)
            assert not isinstance(err.value, finlive.FinliveError)
        assert value(admin, "SELECT status FROM setup_err_jobs") == "running"
    finally:
        query(admin, "DROP TABLE setup_err_jobs")


def test_classification():
    from finlive.errors import classify
    assert classify("42883", "function finlive_mark(integer, unknown, unknown) does not "
                             "exist") == (finlive.ExtensionNotFound, "finlive_mark")
    assert classify("42883", "function app.finlive_clear(bigint) does not exist") == (
        finlive.ExtensionNotFound, "finlive_clear")
    assert classify("42883", "function orch.advance_stage(integer) does not exist") is None
    assert classify("42501", "permission denied for function finlive_clear") == (
        finlive.MissingGrant, "finlive_clear")
    assert classify("42501", "permission denied for table jobs") is None
    assert classify("55000", "finlive must be loaded via shared_preload_libraries",
                    "Add finlive to shared_preload_libraries in postgresql.conf and restart "
                    "the server.") == (finlive.NotPreloaded, None)
    assert classify("55000", "a session that owns jobs cannot run finlive_reap_once") is None
    assert classify(None, "anything") is None
