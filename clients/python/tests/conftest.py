"""Fixtures for the finlive client tests.

The tests need a real PostgreSQL server that preloads finlive (started by
../run-tests.sh), named by environment variables:

  FINLIVE_TEST_DSN            the database the background worker reaps
                              (finlive.database), with the extension
  FINLIVE_TEST_QUIET_DSN      another database with the extension, where
                              only finlive_reap_once reaps (deterministic)
  FINLIVE_TEST_NOEXT_DSN      a database of the same server without the
                              extension
  FINLIVE_TEST_NOPRELOAD_DSN  a database with the extension on a server
                              that does not preload finlive
  FINLIVE_TEST_BOUNCER_TX_DSN       PgBouncer, pool_mode = transaction,
  FINLIVE_TEST_BOUNCER_SESSION_DSN  and pool_mode = session, both to the
                                    worker's database
  FINLIVE_TEST_STRICT=1       a missing server or driver is a failure, not a skip
  FINLIVE_TEST_INSTALLED=1    finlive must be imported from the installed
                              package, not from the source tree

Every test that takes the ``driver`` fixture (directly, or through
``connections`` or ``app``) runs once per driver: ids ``psycopg2`` and
``psycopg3`` (psycopg 3's blocking ``Connection``).  ``async def`` tests
(test_aio.py, on psycopg 3's ``AsyncConnection``) are run by the small
hook below with ``asyncio.run``, so the suite needs no pytest plugin.
"""

import asyncio
import importlib
import inspect
import os
import uuid

import pytest

import finlive

STRICT = os.environ.get("FINLIVE_TEST_STRICT") == "1"


def _missing(what):
    if STRICT:
        pytest.fail("%s (run clients/python/run-tests.sh)" % what)
    pytest.skip("%s (run clients/python/run-tests.sh)" % what)


def _dsn(name):
    value = os.environ.get(name)
    if not value:
        _missing("%s is not set" % name)
    return value


def pytest_report_header(config):
    return "finlive client from %s" % os.path.dirname(finlive.__file__)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run an ``async def`` test in a new event loop; close its AsyncConnections there."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def main():
        try:
            await pyfuncitem.obj(**args)
        finally:
            for value in args.values():
                if isinstance(value, AsyncConnections):
                    await value.close()

    asyncio.run(main())
    return True


@pytest.fixture(scope="session", autouse=True)
def _installed_package():
    if os.environ.get("FINLIVE_TEST_INSTALLED") == "1":
        parts = os.path.abspath(finlive.__file__).split(os.sep)
        assert "site-packages" in parts or "dist-packages" in parts, (
            "finlive was imported from a source tree, not an installed package: %s"
            % finlive.__file__)


@pytest.fixture(scope="session")
def worker_dsn():
    return _dsn("FINLIVE_TEST_DSN")


@pytest.fixture(scope="session")
def quiet_dsn():
    return _dsn("FINLIVE_TEST_QUIET_DSN")


@pytest.fixture(scope="session")
def noext_dsn():
    return _dsn("FINLIVE_TEST_NOEXT_DSN")


@pytest.fixture(scope="session")
def nopreload_dsn():
    return _dsn("FINLIVE_TEST_NOPRELOAD_DSN")


@pytest.fixture(scope="session")
def bouncer_tx_dsn():
    return _dsn("FINLIVE_TEST_BOUNCER_TX_DSN")


@pytest.fixture(scope="session")
def bouncer_session_dsn():
    return _dsn("FINLIVE_TEST_BOUNCER_SESSION_DSN")


# -- drivers ------------------------------------------------------------------------

class Driver:
    """One driver under test: its finlive name and what the tests need of it."""

    def __init__(self, test_id, name):
        self.id = test_id                   # psycopg2 / psycopg3 (the test ids)
        self.name = name                    # psycopg2 / psycopg (finlive's driver names)
        self.module = importlib.import_module(name)
        self.errors = importlib.import_module(name + ".errors")

    def __repr__(self):
        return self.id

    def connect(self, dsn, autocommit=True, **kwargs):
        if self.name == "psycopg2":
            conn = self.module.connect(dsn, **kwargs)
            conn.autocommit = autocommit
            return conn
        return self.module.connect(dsn, autocommit=autocommit, **kwargs)

    def backend_pid(self, conn):
        if self.name == "psycopg2":
            return conn.get_backend_pid()
        return conn.info.backend_pid

    def parameters(self, conn):
        """The connection's libpq parameters as a dict."""
        if self.name == "psycopg2":
            return conn.get_dsn_parameters()
        return conn.info.get_parameters()

    def is_idle(self, conn):
        if self.name == "psycopg2":
            import psycopg2.extensions
            return conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        return conn.info.transaction_status == self.module.pq.TransactionStatus.IDLE


_DRIVERS = {"psycopg2": "psycopg2", "psycopg3": "psycopg"}


@pytest.fixture(scope="session", params=sorted(_DRIVERS))
def driver(request):
    """Each driver in turn: ``psycopg2`` and ``psycopg3``."""
    try:
        return Driver(request.param, _DRIVERS[request.param])
    except ImportError as e:
        _missing("driver %s is not installed: %s" % (request.param, e))


class Connections:
    """Opens connections of one driver and closes them after the test."""

    def __init__(self, driver):
        self.driver = driver
        self.opened = []

    def __call__(self, dsn, autocommit=True, **kwargs):
        """A plain connection (not set up by finlive)."""
        return self.track(self.driver.connect(dsn, autocommit=autocommit, **kwargs))

    def finlive(self, dsn, **kwargs):
        """``finlive.connect`` with this driver."""
        return self.track(finlive.connect(dsn, driver=self.driver.name, **kwargs))

    def track(self, conn):
        self.opened.append(conn)
        return conn

    def close(self):
        for conn in self.opened:
            if not conn.closed:
                conn.close()


@pytest.fixture
def connections(driver):
    c = Connections(driver)
    yield c
    c.close()


class AsyncConnections:
    """Opens psycopg 3 AsyncConnections; the async test hook closes them in its loop."""

    def __init__(self):
        self.opened = []

    async def __call__(self, dsn, autocommit=True, **kwargs):
        import psycopg
        return self.track(await psycopg.AsyncConnection.connect(
            dsn, autocommit=autocommit, **kwargs))

    async def finlive(self, dsn, **kwargs):
        return self.track(await finlive.aio.connect(dsn, **kwargs))

    def track(self, conn):
        self.opened.append(conn)
        return conn

    async def close(self):
        for conn in self.opened:
            if not conn.closed:
                await conn.close()


@pytest.fixture
def aconnections():
    try:
        importlib.import_module("psycopg")
    except ImportError as e:
        _missing("psycopg 3 is not installed: %s" % e)
    return AsyncConnections()


# -- SQL helpers, for either driver ---------------------------------------------------

def query(conn, sql, args=None):
    """All rows of a query (None for a statement without rows)."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def value(conn, sql, args=None):
    rows = query(conn, sql, args)
    return rows[0][0] if rows else None


async def aquery(conn, sql, args=None):
    async with conn.cursor() as cur:
        await cur.execute(sql, args)
        return await cur.fetchall() if cur.description else None


async def avalue(conn, sql, args=None):
    rows = await aquery(conn, sql, args)
    return rows[0][0] if rows else None


APP_SQL = """
CREATE SCHEMA {s};
CREATE TABLE {s}.runs (id bigint PRIMARY KEY, finished_at timestamptz, exit_code integer);
CREATE TABLE {s}.tasks (id bigint PRIMARY KEY, stage text NOT NULL);
CREATE TABLE {s}.jobs (id bigint PRIMARY KEY, status text NOT NULL, run_id bigint,
                       task_id bigint, attempts integer NOT NULL DEFAULT 0,
                       max_attempts integer NOT NULL DEFAULT 2,
                       started_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON {s}.jobs (id) WHERE status = 'running';
CREATE TABLE {s}.results (job_id bigint, note text);
SELECT finlive_register('{s}.jobs', '{s}.runs', '{s}.tasks');
"""


class App:
    """A throwaway application schema (jobs, runs, tasks) registered as a target."""

    def __init__(self, conn, schema):
        self.conn = conn
        self.schema = schema
        self.jobs = schema + ".jobs"

    def add_job(self, job_id, stage="deploy-staging", exit_code=0,
                finished_ago="10 minutes", started_ago="20 minutes", status="running"):
        query(self.conn, "INSERT INTO {s}.tasks VALUES (%s, %s)".format(s=self.schema),
              (job_id, stage))
        query(self.conn,
              "INSERT INTO {s}.runs VALUES (%s, CASE WHEN %s::integer IS NULL THEN NULL "
              "ELSE now() - %s::interval END, %s)".format(s=self.schema),
              (job_id, exit_code, finished_ago, exit_code))
        query(self.conn,
              "INSERT INTO {s}.jobs (id, status, run_id, task_id, started_at) "
              "VALUES (%s, %s, %s, %s, now() - %s::interval)".format(s=self.schema),
              (job_id, status, job_id, job_id, started_ago))
        return job_id

    def status(self, job_id):
        return value(self.conn, "SELECT status FROM {s}.jobs WHERE id = %s".format(
            s=self.schema), (job_id,))


@pytest.fixture
def app(quiet_dsn, connections):
    """A registered target in the quiet database (only finlive_reap_once reaps there),
    administered through a connection of the test's driver."""
    conn = connections(quiet_dsn)
    schema = "t_" + uuid.uuid4().hex[:10]
    query(conn, "SET client_min_messages = warning")
    query(conn, APP_SQL.format(s=schema))
    yield App(conn, schema)
    query(conn, "SELECT finlive_unregister(%s)", (schema + ".jobs",))
    query(conn, "DROP SCHEMA %s CASCADE" % schema)


@pytest.fixture
def plain_app(quiet_dsn):
    """The same as ``app`` for tests that do not run per driver (async tests):
    administered through a psycopg 3 blocking connection."""
    try:
        import psycopg
    except ImportError as e:
        _missing("psycopg 3 is not installed: %s" % e)
    conn = psycopg.connect(quiet_dsn, autocommit=True)
    schema = "t_" + uuid.uuid4().hex[:10]
    query(conn, "SET client_min_messages = warning")
    query(conn, APP_SQL.format(s=schema))
    yield App(conn, schema)
    query(conn, "SELECT finlive_unregister(%s)", (schema + ".jobs",))
    query(conn, "DROP SCHEMA %s CASCADE" % schema)
    conn.close()
