"""The finalizer's fenced last write."""

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from .errors import FinliveError


def _table(name):
    """A table name as psycopg2.sql: "jobs", "app.jobs" or ("my schema", "jobs")."""
    if isinstance(name, sql.Composable):
        return name
    if isinstance(name, (tuple, list)):
        return sql.Identifier(*name)
    return sql.Identifier(*name.split("."))


def fenced_finalize(conn, job_id, token, *, jobs_table="jobs", status="done",
                    finalize=None):
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

    ``conn`` may be the owning connection or any other (even a pooled one):
    the fence checks the owner, not the caller.  It must be idle (no open
    transaction); an exception from ``finalize`` rolls everything back and
    propagates.
    """
    table = _table(jobs_table)
    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        raise FinliveError("fenced_finalize needs a connection with no open transaction")
    previous = conn.autocommit
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT status::text FROM {} WHERE id = %s FOR UPDATE")
                        .format(table), (job_id,))
            row = cur.fetchone()
            if row is None or row[0] != "running":
                conn.rollback()
                return False
            cur.execute("SELECT finlive_fence(%s, %s)", (job_id, token))
            if not cur.fetchone()[0]:
                conn.rollback()
                return False
            if finalize is not None:
                finalize(cur)
            cur.execute(sql.SQL("UPDATE {} SET status = %s WHERE id = %s "
                                "AND status = 'running' AND finlive_fence(%s, %s)")
                        .format(table), (status, job_id, job_id, token))
            if cur.rowcount != 1:
                conn.rollback()
                return False
        conn.commit()
        return True
    except BaseException:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass
        raise
    finally:
        if not conn.closed:
            conn.autocommit = previous
