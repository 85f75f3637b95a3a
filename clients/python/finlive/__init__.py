"""Python integration for the finlive PostgreSQL extension.

finlive keeps job ownership in PostgreSQL as session-level advisory locks:
a session owns a job from ``finlive_mark`` until ``finlive_clear`` or until
the session ends, however it ends.  This package wraps that for
applications that use psycopg2:

``owned(conn, job_id, run_id=None, stage=None)``
    Context manager: marks the job on a dedicated session-mode connection,
    yields the fencing token, clears on exit (also when the body raises).
    Refuses, with :class:`SessionPoolingError`, a connection on which
    session-level ownership cannot hold (a transaction-pooling proxy).

``fenced_finalize(conn, job_id, token, ...)``
    The finalizer's last write, in one transaction, only while the token is
    still the job's current ownership: returns False (and writes nothing)
    when ownership was lost or the reaper got there first.

``ReapListener(dsn, callback)``
    Turns ``NOTIFY finlive_reaped`` into ``callback(ReapEvent)`` calls, in a
    background thread or by explicit polling.

``connect(dsn)``
    A connection set up for ownership (autocommit, keepalives, an
    application_name), checked with :func:`check_session`.
"""

from .errors import (
    AlreadyOwned,
    FinliveError,
    OwnershipLost,
    SessionPoolingError,
)
from .session import check_session, connect
from .ownership import clear, mark, owned
from .fence import fenced_finalize
from .listener import ReapEvent, ReapListener

__version__ = "1.1.0"

__all__ = [
    "AlreadyOwned",
    "FinliveError",
    "OwnershipLost",
    "ReapEvent",
    "ReapListener",
    "SessionPoolingError",
    "check_session",
    "clear",
    "connect",
    "fenced_finalize",
    "mark",
    "owned",
]
