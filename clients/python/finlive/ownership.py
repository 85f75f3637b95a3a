"""Marking and clearing job ownership on a dedicated connection."""

import logging
from contextlib import contextmanager

import psycopg2

from .errors import AlreadyOwned, OwnershipLost, SessionPoolingError
from .session import autocommit, forget, verified_identity

log = logging.getLogger("finlive")

# Each call also returns the server pid it ran on, so a connection that was
# verified once is checked again on every call, at no extra round trip.
_MARK_SQL = "SELECT finlive_mark(%s, %s, %s), pg_backend_pid()"
_CLEAR_SQL = "SELECT finlive_clear(%s), pg_backend_pid()"
_OWNER_SQL = ("SELECT pid, backend_start, run_id, stage, since "
              "FROM finlive_owners() WHERE job_id = %s")


def _moved(conn, job_id, expected_pid, seen_pid, what):
    forget(conn)
    return SessionPoolingError(
        "%s of job %s ran in server session pid %s, not in pid %s where this "
        "connection was verified: the connection goes through a transaction-pooling "
        "proxy, and session-level ownership cannot hold there."
        % (what, job_id, seen_pid, expected_pid))


def mark(conn, job_id, run_id=None, stage=None):
    """Take ownership of ``job_id`` without waiting.

    Returns the fencing token, or None when another live session owns the
    job.  The session that owns the job may call it again: it keeps the job,
    updates run_id/stage and gets the same token.  Raises
    :class:`SessionPoolingError` if ownership cannot hold on ``conn``.
    """
    pid, _ = verified_identity(conn)
    with autocommit(conn):
        with conn.cursor() as cur:
            cur.execute(_MARK_SQL, (job_id, run_id, stage))
            token, seen = cur.fetchone()
        if seen != pid:
            # Only a transaction pool that passed the check by chance gets
            # here.  Try to release the lock wherever it landed, then refuse.
            if token is not None:
                try:
                    with conn.cursor() as cur:
                        cur.execute(_CLEAR_SQL, (job_id,))
                except psycopg2.Error:
                    pass
            raise _moved(conn, job_id, pid, seen, "finlive_mark")
    return token


def clear(conn, job_id):
    """Release ``job_id``; True if this session owned it."""
    pid, _ = verified_identity(conn)
    with autocommit(conn):
        with conn.cursor() as cur:
            cur.execute(_CLEAR_SQL, (job_id,))
            released, seen = cur.fetchone()
    if seen != pid:
        raise _moved(conn, job_id, pid, seen, "finlive_clear")
    return bool(released)


def owner_of(conn, job_id):
    """The live owner of ``job_id`` as a dict, or None."""
    with autocommit(conn):
        with conn.cursor() as cur:
            cur.execute(_OWNER_SQL, (job_id,))
            row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("pid", "backend_start", "run_id", "stage", "since"), row))


@contextmanager
def owned(conn, job_id, run_id=None, stage=None):
    """Own ``job_id`` for the duration of the block; yields the fencing token.

    ``conn`` must be a dedicated connection (direct, or through a
    session-mode pool) that is idle between calls: the ownership is its
    server session's.  On exit the job is cleared, also when the block
    raises (the block's exception then propagates unchanged).

    Raises :class:`AlreadyOwned` when another live session owns the job,
    :class:`SessionPoolingError` (before marking anything) when ownership
    cannot hold on ``conn``, and :class:`OwnershipLost` at the end of a
    block that completed while the session lost the job (its connection
    died, or something ran ``pg_advisory_unlock_all()`` / ``DISCARD ALL`` on
    it): whatever the block did after that, it did without ownership.
    """
    token = mark(conn, job_id, run_id, stage)
    if token is None:
        owner = None
        try:
            owner = owner_of(conn, job_id)
        except psycopg2.Error:
            pass
        raise AlreadyOwned(job_id, owner)
    try:
        yield token
    except BaseException:
        try:
            if not conn.closed:
                clear(conn, job_id)
        except Exception as e:  # the block's exception matters more
            log.warning("finlive: could not clear job %s after an error in the block: %s",
                        job_id, e)
        raise
    try:
        released = clear(conn, job_id)
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
        # The session is gone, and its ownership with it.
        raise OwnershipLost(job_id, "the owning session of job %s ended before the block "
                                    "did (%s)" % (job_id, str(e).strip())) from e
    if not released:
        raise OwnershipLost(job_id, "job %s was no longer owned by this session when the "
                                    "block ended" % job_id)
