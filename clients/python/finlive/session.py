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
"""

import logging
import weakref
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from .errors import FinliveError, SessionPoolingError

log = logging.getLogger("finlive")

# Connections that passed check_session: conn -> (server pid, backend_start).
_verified = weakref.WeakKeyDictionary()
# The DSN each connect() used, for the probe connection (conn.dsn hides the
# password).
_dsns = weakref.WeakKeyDictionary()

_IDENTITY_SQL = (
    "SELECT pg_backend_pid(), "
    "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())"
)

DEFAULT_APPLICATION_NAME = "finlive-owner"


def connect(dsn="", *, application_name=DEFAULT_APPLICATION_NAME, check=True, **kwargs):
    """Open a connection for ownership: autocommit, TCP keepalives on.

    ``dsn`` and ``kwargs`` are passed to :func:`psycopg2.connect`.  With
    ``check`` (the default) the connection is verified with
    :func:`check_session` before it is returned; a connection on which
    ownership cannot hold is closed and :class:`SessionPoolingError` raised.
    """
    params = {
        "application_name": application_name,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    params.update(kwargs)
    conn = psycopg2.connect(dsn, **params)
    conn.autocommit = True
    _dsns[conn] = (dsn, kwargs)
    if check:
        try:
            check_session(conn)
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def autocommit(conn):
    """Run the body with ``conn`` in autocommit mode, then restore the mode.

    Refuses a connection that is inside a transaction: ownership helpers
    must not commit or roll back the caller's work.
    """
    status = conn.info.transaction_status
    if status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        raise FinliveError(
            "the connection is inside a transaction (status %d); finlive needs a "
            "dedicated connection that is idle between its calls" % status)
    previous = conn.autocommit
    if not previous:
        conn.autocommit = True
    try:
        yield conn
    finally:
        if not previous and not conn.closed:
            conn.autocommit = False


def _identity(conn):
    with conn.cursor() as cur:
        cur.execute(_IDENTITY_SQL)
        pid, started = cur.fetchone()
    return pid, started


def _probe_connect(conn, probe_dsn):
    if probe_dsn is not None:
        return psycopg2.connect(probe_dsn, application_name="finlive-session-probe")
    if conn in _dsns:
        dsn, kwargs = _dsns[conn]
        kwargs = dict(kwargs)
        kwargs["application_name"] = "finlive-session-probe"
        return psycopg2.connect(dsn, **kwargs)
    # conn.dsn has the password masked: fine with trust, peer, .pgpass or
    # PGPASSWORD, which is how services usually authenticate.
    return psycopg2.connect(conn.dsn, application_name="finlive-session-probe")


def check_session(conn, *, probe_dsn=None, probes=3, force=False):
    """Verify that session-level ownership can hold on ``conn``.

    Returns the server session's ``(pid, backend_start)``.  Raises
    :class:`SessionPoolingError` when the connection goes through a
    transaction- or statement-pooling proxy, or when that cannot be ruled
    out (behind a proxy, the probe connection could not be opened: pass
    ``probe_dsn``).  The result is cached per connection; ``force`` checks
    again.
    """
    if not force and conn in _verified:
        identity = _verified[conn]
        with autocommit(conn):
            if _identity(conn) == identity:
                return identity
        del _verified[conn]

    with autocommit(conn):
        first = _identity(conn)
        for _ in range(2):
            again = _identity(conn)
            if again != first:
                raise SessionPoolingError(
                    "consecutive transactions on this connection ran in different "
                    "server sessions (pid %s, then pid %s): it goes through a "
                    "transaction-pooling proxy, where session-level ownership cannot "
                    "hold. Connect directly or through a session-mode pool "
                    "(PgBouncer pool_mode = session)." % (first[0], again[0]))

        protocol_pid = conn.get_backend_pid()
        if protocol_pid != first[0]:
            log.debug("finlive: connection goes through a proxy (startup pid %s, "
                      "server pid %s); probing its pooling mode", protocol_pid, first[0])
            try:
                probe = _probe_connect(conn, probe_dsn)
            except psycopg2.Error as e:
                raise SessionPoolingError(
                    "the connection goes through a proxy (PgBouncer?) and its pooling "
                    "mode could not be checked: a probe connection failed (%s). "
                    "Pass probe_dsn=..., or connect directly." % str(e).strip()) from e
            try:
                probe.autocommit = True
                for _ in range(probes):
                    # this connection is idle here: a transaction pool may hand
                    # its server session to the probe
                    seen = _identity(probe)
                    if seen[0] == first[0]:
                        raise SessionPoolingError(
                            "the proxy gave this connection's server session (pid %s) to "
                            "another client while this connection was idle: it pools "
                            "by transaction, where session-level ownership cannot hold "
                            "(a finlive lock would stay with a server session other "
                            "clients use). Connect directly or through a session-mode "
                            "pool (PgBouncer pool_mode = session)." % first[0])
                    mine = _identity(conn)
                    if mine != first:
                        raise SessionPoolingError(
                            "this connection moved from server pid %s to %s between "
                            "transactions: it goes through a transaction-pooling proxy, "
                            "where session-level ownership cannot hold." % (first[0], mine[0]))
            finally:
                probe.close()

    _verified[conn] = first
    return first


def verified_identity(conn):
    """The server session ``conn`` was verified on, checking it first if needed."""
    if conn in _verified:
        return _verified[conn]
    return check_session(conn)


def forget(conn):
    """Drop the cached verification of ``conn`` (after a reconnect, say)."""
    _verified.pop(conn, None)
