"""Dedicated session-mode connections, and the check that ownership can hold.

Ownership is a property of the PostgreSQL *server session*.  It holds for a
client only while every statement of that client runs in the same server
session: a direct connection, or a proxy in session pooling mode.  A proxy
in transaction (or statement) pooling mode runs each transaction on
whichever server session is free, so a job marked in one transaction stays
locked by a server session that other clients then use, and neither the
reaper nor this client can tell that the owner is gone.

:func:`check_session` proves the first case and refuses the second:

1. It asks the server for its process id and start time, in three separate
   transactions: a transaction-pooling proxy that switches server sessions
   between them is caught at once.
2. It compares the server's process id with the one the connection was
   given at startup (the protocol's BackendKeyData).  They differ only when
   something between client and server answered the startup itself: a
   proxy.  Without a proxy, the connection is the session: done.
3. Behind a proxy, it opens a second client connection through the same
   proxy while this one is idle between transactions and asks which server
   session it got.  A session-pooling proxy keeps this connection's server
   session for it alone, so the probe gets another one; a transaction
   pooling proxy hands the idle server session to the next client, so the
   probe gets this connection's own session back.  Repeated a few times.

A connection that passes is remembered (per connection object and server
session), and every mark and clear checks again, in the same statement,
that it still runs on that server session.

Works with psycopg2 and psycopg 3 connections; :mod:`finlive.aio` has the
same for psycopg 3's ``AsyncConnection``.
"""

from __future__ import annotations

import datetime
import logging
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Tuple, Union

from . import _core
from ._core import Close, Connect, Steps, in_autocommit, query
from ._driver import Driver, driver_of, get_driver, is_idle, require_sync
from .errors import SessionPoolingError

if TYPE_CHECKING:
    import psycopg
    import psycopg2.extensions

    #: A blocking connection of either driver.
    Connection = Union["psycopg2.extensions.connection", "psycopg.Connection[Any]"]
else:
    Connection = Any

log = logging.getLogger("finlive")

#: A server session: its pid and its backend_start.
Identity = Tuple[int, datetime.datetime]

# Connections that passed check_session: conn -> (server pid, backend_start).
_verified: "weakref.WeakKeyDictionary[Any, Identity]" = weakref.WeakKeyDictionary()
# The DSN and keyword arguments each connect() used, for the probe connection
# (the driver's own DSN of a connection leaves the password out).
_dsns: "weakref.WeakKeyDictionary[Any, Tuple[str, Dict[str, Any]]]" = (
    weakref.WeakKeyDictionary())

_IDENTITY_SQL = (
    "SELECT pg_backend_pid(), "
    "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())"
)

DEFAULT_APPLICATION_NAME = "finlive-owner"
PROBE_APPLICATION_NAME = "finlive-session-probe"


# -- the operations, for finlive and finlive.aio alike ---------------------------

def connection_params(application_name: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Keyword arguments for the driver's connect(): keepalives on, then ``kwargs``."""
    params: Dict[str, Any] = {
        "application_name": application_name,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    params.update(kwargs)
    return params


def connect_steps(driver: Driver, dsn: str, application_name: str, check: bool,
                  kwargs: Dict[str, Any]) -> Steps[Any]:
    conn = yield Connect(driver, dsn, connection_params(application_name, kwargs))
    _dsns[conn] = (dsn, dict(kwargs))
    if check:
        try:
            yield from check_steps(conn, None, 3, False)
        except BaseException:
            yield Close(conn)
            raise
    return conn


def _identity(conn: Any) -> Steps[Identity]:
    rows = yield from query(conn, _IDENTITY_SQL)
    pid, started = rows[0]
    return int(pid), started


def _probe_connect(conn: Any, probe_dsn: Optional[str]) -> Connect:
    driver = driver_of(conn)
    if probe_dsn is not None:
        return Connect(driver, probe_dsn, {"application_name": PROBE_APPLICATION_NAME})
    if conn in _dsns:
        dsn, kwargs = _dsns[conn]
        params = dict(kwargs)
        params["application_name"] = PROBE_APPLICATION_NAME
        return Connect(driver, dsn, params)
    # The driver's DSN has no password: fine with trust, peer, .pgpass or
    # PGPASSWORD, which is how services usually authenticate.
    return Connect(driver, driver.dsn(conn), {"application_name": PROBE_APPLICATION_NAME})


def _verify(conn: Any, probe_dsn: Optional[str], probes: int) -> Steps[Identity]:
    driver = driver_of(conn)
    first = yield from _identity(conn)
    for _ in range(2):
        again = yield from _identity(conn)
        if again != first:
            raise SessionPoolingError(
                "consecutive transactions on this connection ran in different "
                "server sessions (pid %s, then pid %s): it goes through a "
                "transaction-pooling proxy, where session-level ownership cannot "
                "hold. Connect directly or through a session-mode pool "
                "(PgBouncer pool_mode = session)." % (first[0], again[0]))

    protocol_pid = driver.backend_pid(conn)
    if protocol_pid == first[0]:
        return first
    log.debug("finlive: connection goes through a proxy (startup pid %s, "
              "server pid %s); probing its pooling mode", protocol_pid, first[0])
    try:
        probe = yield _probe_connect(conn, probe_dsn)
    except driver.Error as e:
        raise SessionPoolingError(
            "the connection goes through a proxy (PgBouncer?) and its pooling "
            "mode could not be checked: a probe connection failed (%s). "
            "Pass probe_dsn=..., or connect directly." % str(e).strip()) from e
    try:
        for _ in range(probes):
            # this connection is idle here: a transaction pool may hand its
            # server session to the probe
            seen = yield from _identity(probe)
            if seen[0] == first[0]:
                raise SessionPoolingError(
                    "the proxy gave this connection's server session (pid %s) to "
                    "another client while this connection was idle: it pools "
                    "by transaction, where session-level ownership cannot hold "
                    "(a finlive lock would stay with a server session other "
                    "clients use). Connect directly or through a session-mode "
                    "pool (PgBouncer pool_mode = session)." % first[0])
            mine = yield from _identity(conn)
            if mine != first:
                raise SessionPoolingError(
                    "this connection moved from server pid %s to %s between "
                    "transactions: it goes through a transaction-pooling proxy, "
                    "where session-level ownership cannot hold." % (first[0], mine[0]))
    finally:
        yield Close(probe)
    return first


def check_steps(conn: Any, probe_dsn: Optional[str], probes: int,
                force: bool) -> Steps[Identity]:
    if not force and conn in _verified:
        identity = _verified[conn]
        now = yield from in_autocommit(conn, _identity(conn))
        if now == identity:
            return identity
        del _verified[conn]
    first = yield from in_autocommit(conn, _verify(conn, probe_dsn, probes))
    _verified[conn] = first
    return first


def verified_identity_steps(conn: Any) -> Steps[Identity]:
    if conn in _verified:
        return _verified[conn]
    return (yield from check_steps(conn, None, 3, False))


# -- the blocking API ---------------------------------------------------------------

def connect(dsn: str = "", *, application_name: str = DEFAULT_APPLICATION_NAME,
            check: bool = True, driver: Optional[str] = None, **kwargs: Any) -> Connection:
    """Open a connection for ownership: autocommit, TCP keepalives on.

    ``driver`` is ``"psycopg2"`` or ``"psycopg"`` (psycopg 3); by default
    psycopg2 when it is installed, else psycopg 3.  ``dsn`` and ``kwargs``
    are passed to the driver's ``connect()``.  With ``check`` (the default)
    the connection is verified with :func:`check_session` before it is
    returned; a connection on which ownership cannot hold is closed and
    :class:`SessionPoolingError` raised.
    """
    return _core.run(connect_steps(get_driver(driver), dsn, application_name, check, kwargs))


@contextmanager
def autocommit(conn: Connection) -> Iterator[Connection]:
    """Run the body with ``conn`` in autocommit mode, then restore the mode.

    Refuses a connection that is inside a transaction: ownership helpers
    must not commit or roll back the caller's work.
    """
    driver_of(conn)
    if not is_idle(conn):
        raise _core.not_idle_error(conn)
    previous = bool(conn.autocommit)
    if not previous:
        conn.autocommit = True
    try:
        yield conn
    finally:
        if not previous and not conn.closed:
            conn.autocommit = False


def check_session(conn: Connection, *, probe_dsn: Optional[str] = None, probes: int = 3,
                  force: bool = False) -> Identity:
    """Verify that session-level ownership can hold on ``conn``.

    Returns the server session's ``(pid, backend_start)``.  Raises
    :class:`SessionPoolingError` when the connection goes through a
    transaction- or statement-pooling proxy, or when that cannot be ruled
    out (behind a proxy, the probe connection could not be opened: pass
    ``probe_dsn``).  The result is cached per connection; ``force`` checks
    again.
    """
    require_sync(conn, "check_session")
    return _core.run(check_steps(conn, probe_dsn, probes, force))


def verified_identity(conn: Connection) -> Identity:
    """The server session ``conn`` was verified on, checking it first if needed."""
    require_sync(conn, "verified_identity")
    return _core.run(verified_identity_steps(conn))


def forget(conn: Any) -> None:
    """Drop the cached verification of ``conn`` (after a reconnect, say)."""
    _verified.pop(conn, None)
