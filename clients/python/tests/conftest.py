"""Fixtures for the finlive client tests.

The tests need a real PostgreSQL 15 server that preloads finlive (started
by ../run-tests.sh), named by environment variables:

  FINLIVE_TEST_DSN            the database the background worker reaps
                              (finlive.database), with the extension
  FINLIVE_TEST_QUIET_DSN      another database with the extension, where
                              only finlive_reap_once reaps (deterministic)
  FINLIVE_TEST_BOUNCER_TX_DSN       PgBouncer, pool_mode = transaction,
  FINLIVE_TEST_BOUNCER_SESSION_DSN  and pool_mode = session, both to the
                                    worker's database
  FINLIVE_TEST_STRICT=1       a missing server is a failure, not a skip
  FINLIVE_TEST_INSTALLED=1    finlive must be imported from the installed
                              package, not from the source tree
"""

import os
import uuid

import psycopg2
import pytest

import finlive

STRICT = os.environ.get("FINLIVE_TEST_STRICT") == "1"


def _dsn(name):
    value = os.environ.get(name)
    if not value:
        if STRICT:
            pytest.fail("%s is not set (run clients/python/run-tests.sh)" % name)
        pytest.skip("%s is not set (run clients/python/run-tests.sh)" % name)
    return value


def pytest_report_header(config):
    return "finlive client from %s" % os.path.dirname(finlive.__file__)


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
def bouncer_tx_dsn():
    return _dsn("FINLIVE_TEST_BOUNCER_TX_DSN")


@pytest.fixture(scope="session")
def bouncer_session_dsn():
    return _dsn("FINLIVE_TEST_BOUNCER_SESSION_DSN")


class Connections:
    """Opens plain psycopg2 connections and closes them after the test."""

    def __init__(self):
        self.opened = []

    def __call__(self, dsn, autocommit=True, **kwargs):
        conn = psycopg2.connect(dsn, **kwargs)
        conn.autocommit = autocommit
        self.opened.append(conn)
        return conn

    def track(self, conn):
        self.opened.append(conn)
        return conn

    def close(self):
        for conn in self.opened:
            if not conn.closed:
                conn.close()


@pytest.fixture
def connections():
    c = Connections()
    yield c
    c.close()


def query(conn, sql, args=()):
    """All rows of a query, in autocommit."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def value(conn, sql, args=()):
    rows = query(conn, sql, args)
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
    """A registered target in the quiet database (only finlive_reap_once reaps there)."""
    conn = connections(quiet_dsn)
    schema = "t_" + uuid.uuid4().hex[:10]
    query(conn, "SET client_min_messages = warning")
    query(conn, APP_SQL.format(s=schema))
    yield App(conn, schema)
    query(conn, "SELECT finlive_unregister(%s)", (schema + ".jobs",))
    query(conn, "DROP SCHEMA %s CASCADE" % schema)
