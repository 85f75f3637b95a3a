"""Python integration for the finlive PostgreSQL extension.

finlive keeps job ownership in PostgreSQL as session-level advisory locks:
a session owns a job from ``finlive_mark`` until ``finlive_clear`` or until
the session ends, however it ends.  This package wraps that for
applications on psycopg2 or psycopg 3 (blocking), and, in
:mod:`finlive.aio`, on psycopg 3's ``AsyncConnection``:

``owned(conn, job_id, run_id=None, stage=None)``
    Context manager: marks the job on a dedicated session-mode connection,
    yields the fencing token, clears on exit (also when the body raises).
    Refuses, with :class:`SessionPoolingError`, a connection on which
    session-level ownership cannot hold (a transaction-pooling proxy).

``fenced_finalize(conn, job_id, token, *, jobs_table, status, finalize)``
    The finalizer's last write, in one transaction, only while the token is
    still the job's current ownership: returns False (and writes nothing)
    when ownership was lost or the reaper got there first.

``ReapListener(dsn, callback, *, targets, ...)``
    Turns ``NOTIFY finlive_reaped`` into ``callback(ReapEvent)`` calls, in a
    background thread or by explicit polling.

``connect(dsn, *, driver=None)``
    A connection set up for ownership (autocommit, keepalives, an
    application_name), checked with :func:`check_session`.

A database or role that is not set up for finlive raises a
:class:`SetupError` that says what to run: :class:`ExtensionNotFound`,
:class:`MissingGrant` or :class:`NotPreloaded`.

No driver is imported until one is used: an application needs only the
one it runs on.
"""

from .errors import (
    AlreadyOwned,
    ExtensionNotFound,
    FinliveError,
    MissingGrant,
    NotPreloaded,
    OwnershipLost,
    SessionPoolingError,
    SetupError,
)
from .session import check_session, connect
from .ownership import clear, mark, owned, owner_of
from .fence import fenced_finalize
from .listener import ReapEvent, ReapListener
from . import aio

__version__ = "1.3.0"

__all__ = [
    "AlreadyOwned",
    "ExtensionNotFound",
    "FinliveError",
    "MissingGrant",
    "NotPreloaded",
    "OwnershipLost",
    "ReapEvent",
    "ReapListener",
    "SessionPoolingError",
    "SetupError",
    "aio",
    "check_session",
    "clear",
    "connect",
    "fenced_finalize",
    "mark",
    "owned",
    "owner_of",
]
