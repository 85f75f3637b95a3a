"""The finalizer's fenced last write."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from ._core import Call, Commit, Rollback, SetAutocommit, Steps, explained, query, run, table_sql
from ._driver import driver_of, is_idle, require_sync
from .errors import FinliveError
from .session import Connection

#: A jobs table: ``"jobs"``, ``"app.jobs"``, ``("my schema", "jobs")`` or an
#: ``sql.Composable`` of the connection's driver.
TableName = Union[str, Sequence[str], Any]


def fenced_finalize_steps(conn: Any, job_id: int, token: int, jobs_table: TableName,
                          status: str, finalize: Optional[Callable[..., Any]]) -> Steps[bool]:
    table = table_sql(conn, jobs_table)
    if not is_idle(conn):
        raise FinliveError("fenced_finalize needs a connection with no open transaction")
    driver = driver_of(conn)
    previous = bool(conn.autocommit)
    yield SetAutocommit(conn, False)
    try:
        rows = yield from query(conn, "SELECT status::text FROM %s WHERE id = %%s FOR UPDATE"
                                % table, (job_id,))
        if not rows or rows[0][0] != "running":
            yield Rollback(conn)
            return False
        rows = yield from query(conn, "SELECT finlive_fence(%s, %s)", (job_id, token))
        if not rows[0][0]:
            yield Rollback(conn)
            return False
        if finalize is not None:
            yield Call(finalize, cursor_of=conn)
        rows = yield from query(conn, "UPDATE %s SET status = %%s WHERE id = %%s "
                                      "AND status = 'running' AND finlive_fence(%%s, %%s) "
                                      "RETURNING true" % table,
                                (status, job_id, job_id, token))
        if len(rows) != 1:
            yield Rollback(conn)
            return False
        yield Commit(conn)
        return True
    except BaseException:
        if not conn.closed:
            try:
                yield Rollback(conn)
            except driver.Error:
                pass
        raise
    finally:
        if not conn.closed and previous:
            yield SetAutocommit(conn, True)


def fenced_finalize(conn: Connection, job_id: int, token: int, *,
                    jobs_table: TableName = "jobs", status: str = "done",
                    finalize: Optional[Callable[[Any], Any]] = None) -> bool:
    """Finalize a job only while ``token`` is still its current ownership.

    In one transaction on ``conn``: lock the job's row (``FOR UPDATE``: the
    reaper skips a row a finalizer holds), check that the job is still
    ``'running'`` and that ``finlive_fence(job_id, token)`` holds, call
    ``finalize(cursor)`` for the application's own writes (advance the
    stage, record results), set the job's ``status``, commit.

    Returns True when the job was finalized.  Returns False, having written
    nothing, when the ownership was lost (the owner session ended, or the
    job was cleared or taken over) or the job is no longer running (the
    reaper finalized it): the caller must then not perform its own
    irreversible side effects (merging, deploying) for this job.

    ``jobs_table`` is ``"jobs"``, ``"schema.jobs"`` (split at the dot),
    ``("my schema", "jobs")`` (each part an identifier, quoted as given), or
    an ``sql.Composable`` of the connection's driver.

    ``conn`` may be the owning connection or any other (even a pooled one):
    the fence checks the owner, not the caller.  It must be idle (no open
    transaction); an exception from ``finalize`` rolls everything back and
    propagates.
    """
    require_sync(conn, "fenced_finalize")
    return run(explained(conn, fenced_finalize_steps(conn, job_id, token, jobs_table,
                                                     status, finalize)))
