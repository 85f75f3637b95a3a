"""Marking and clearing job ownership on a dedicated connection.

The operations are written once (generators of :mod:`finlive._core` steps)
and run here with blocking calls, in :mod:`finlive.aio` with ``await``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

from ._core import Steps, explained, in_autocommit, query, run
from ._driver import driver_of, require_sync
from .errors import AlreadyOwned, OwnershipLost, SessionPoolingError
from .session import Connection, forget, verified_identity_steps

log = logging.getLogger("finlive")

# Each call also returns the server pid it ran on, so a connection that was
# verified once is checked again on every call, at no extra round trip.
_MARK_SQL = "SELECT finlive_mark(%s, %s, %s), pg_backend_pid()"
_CLEAR_SQL = "SELECT finlive_clear(%s), pg_backend_pid()"
_OWNER_SQL = ("SELECT pid, backend_start, run_id, stage, since "
              "FROM finlive_owners() WHERE job_id = %s")
_OWNER_FIELDS = ("pid", "backend_start", "run_id", "stage", "since")


def _moved(conn: Any, job_id: Any, expected_pid: int, seen_pid: int,
           what: str) -> SessionPoolingError:
    forget(conn)
    return SessionPoolingError(
        "%s of job %s ran in server session pid %s, not in pid %s where this "
        "connection was verified: the connection goes through a transaction-pooling "
        "proxy, and session-level ownership cannot hold there."
        % (what, job_id, seen_pid, expected_pid))


# -- the operations, for finlive and finlive.aio alike ---------------------------

def mark_steps(conn: Any, job_id: Optional[int], run_id: Optional[int],
               stage: Optional[str]) -> Steps[Optional[int]]:
    driver = driver_of(conn)
    pid, _ = yield from verified_identity_steps(conn)

    def body() -> Steps[Optional[int]]:
        rows = yield from query(conn, _MARK_SQL, (job_id, run_id, stage))
        token, seen = rows[0]
        if seen != pid:
            # Only a transaction pool that passed the check by chance gets
            # here.  Try to release the lock wherever it landed, then refuse.
            if token is not None:
                try:
                    yield from query(conn, _CLEAR_SQL, (job_id,))
                except driver.Error:
                    pass
            raise _moved(conn, job_id, pid, seen, "finlive_mark")
        return None if token is None else int(token)

    return (yield from explained(conn, in_autocommit(conn, body())))


def clear_steps(conn: Any, job_id: Optional[int]) -> Steps[bool]:
    pid, _ = yield from verified_identity_steps(conn)
    rows = yield from explained(conn, in_autocommit(conn, query(conn, _CLEAR_SQL, (job_id,))))
    released, seen = rows[0]
    if seen != pid:
        raise _moved(conn, job_id, pid, seen, "finlive_clear")
    return bool(released)


def owner_steps(conn: Any, job_id: Optional[int]) -> Steps[Optional[Dict[str, Any]]]:
    rows = yield from explained(conn, in_autocommit(conn, query(conn, _OWNER_SQL, (job_id,))))
    if not rows:
        return None
    return dict(zip(_OWNER_FIELDS, rows[0]))


def already_owned_steps(conn: Any, job_id: Optional[int]) -> Steps[AlreadyOwned]:
    """The AlreadyOwned error for ``job_id``, with its owner when that can be read."""
    owner = None
    try:
        owner = yield from owner_steps(conn, job_id)
    except driver_of(conn).Error:
        pass
    return AlreadyOwned(job_id, owner)


def clear_after_error_steps(conn: Any, job_id: Optional[int]) -> Steps[None]:
    """Clear at the end of a block that raised: the block's error matters more."""
    try:
        if not conn.closed:
            yield from clear_steps(conn, job_id)
    except Exception as e:
        log.warning("finlive: could not clear job %s after an error in the block: %s",
                    job_id, e)


def clear_at_end_steps(conn: Any, job_id: Optional[int]) -> Steps[None]:
    """Clear at the end of a block that completed; OwnershipLost if it had been lost."""
    try:
        released = yield from clear_steps(conn, job_id)
    except driver_of(conn).connection_errors as e:
        # The session is gone, and its ownership with it.
        raise OwnershipLost(job_id, "the owning session of job %s ended before the block "
                                    "did (%s)" % (job_id, str(e).strip())) from e
    if not released:
        raise OwnershipLost(job_id, "job %s was no longer owned by this session when the "
                                    "block ended" % job_id)


# -- the blocking API ---------------------------------------------------------------

def mark(conn: Connection, job_id: Optional[int], run_id: Optional[int] = None,
         stage: Optional[str] = None) -> Optional[int]:
    """Take ownership of ``job_id`` without waiting.

    Returns the fencing token, or None when another live session owns the
    job.  The session that owns the job may call it again: it keeps the job,
    updates run_id/stage and gets the same token.  Raises
    :class:`SessionPoolingError` if ownership cannot hold on ``conn``, and a
    :class:`SetupError` (:class:`ExtensionNotFound`, :class:`MissingGrant`,
    :class:`NotPreloaded`) that says what to run when the database or role
    is not set up for finlive.
    """
    require_sync(conn, "mark")
    return run(mark_steps(conn, job_id, run_id, stage))


def clear(conn: Connection, job_id: Optional[int]) -> bool:
    """Release ``job_id``; True if this session owned it."""
    require_sync(conn, "clear")
    return run(clear_steps(conn, job_id))


def owner_of(conn: Connection, job_id: Optional[int]) -> Optional[Dict[str, Any]]:
    """The live owner of ``job_id`` as a dict (pid, backend_start, run_id, stage, since), or None."""
    require_sync(conn, "owner_of")
    return run(owner_steps(conn, job_id))


@contextmanager
def owned(conn: Connection, job_id: int, run_id: Optional[int] = None,
          stage: Optional[str] = None) -> Iterator[int]:
    """Own ``job_id`` for the duration of the block; yields the fencing token.

    ``conn`` must be a dedicated connection (direct, or through a
    session-mode pool) that is idle between calls: the ownership is its
    server session's.  On exit the job is cleared, also when the block
    raises (the block's exception then propagates unchanged).

    Raises :class:`AlreadyOwned` when another live session owns the job,
    :class:`SessionPoolingError` (before marking anything) when ownership
    cannot hold on ``conn``, a :class:`SetupError` when the database or
    role is not set up for finlive, and :class:`OwnershipLost` at the end
    of a block that completed while the session lost the job (its
    connection died, or something ran ``pg_advisory_unlock_all()`` /
    ``DISCARD ALL`` on it): whatever the block did after that, it did
    without ownership.
    """
    require_sync(conn, "owned")
    token = mark(conn, job_id, run_id, stage)
    if token is None:
        raise run(already_owned_steps(conn, job_id))
    try:
        yield token
    except BaseException:
        run(clear_after_error_steps(conn, job_id))
        raise
    run(clear_at_end_steps(conn, job_id))
