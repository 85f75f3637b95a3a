"""finlive for asyncio, on psycopg 3's ``AsyncConnection``.

The same API as the top-level package, awaited::

    from finlive import aio

    conn = await aio.connect("dbname=orch")
    async with aio.owned(conn, job_id, run_id, stage) as token:
        await work()
        if not await aio.fenced_finalize(conn, job_id, token, jobs_table="orch.jobs"):
            return                                  # ownership lost: do not merge

    async with aio.ReapListener("dbname=orch", on_reap):  # callback may be async
        ...

Each function runs the very operation its blocking twin runs (see
:mod:`finlive._core`), so behaviour, SQL and errors are the same.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Dict, Iterable, List, Optional

from . import _core
from ._core import explained, run_async
from ._driver import get_driver, require_async
from .fence import TableName, fenced_finalize_steps
from .listener import CHANNEL, ListenerCore, ReapEvent
from .ownership import (already_owned_steps, clear_after_error_steps, clear_at_end_steps,
                        clear_steps, mark_steps, owner_steps)
from .session import (DEFAULT_APPLICATION_NAME, Identity, check_steps, connect_steps,
                      verified_identity_steps)

if TYPE_CHECKING:
    import psycopg

    AsyncConnection = psycopg.AsyncConnection[Any]
else:
    AsyncConnection = Any

log = logging.getLogger("finlive")

__all__ = [
    "ReapListener",
    "check_session",
    "clear",
    "connect",
    "fenced_finalize",
    "mark",
    "owned",
    "owner_of",
    "verified_identity",
]


async def connect(dsn: str = "", *, application_name: str = DEFAULT_APPLICATION_NAME,
                  check: bool = True, **kwargs: Any) -> AsyncConnection:
    """An ``AsyncConnection`` for ownership: autocommit, keepalives, checked.

    As :func:`finlive.connect`, with psycopg 3.
    """
    return await run_async(connect_steps(get_driver("psycopg"), dsn, application_name,
                                         check, kwargs))


async def check_session(conn: AsyncConnection, *, probe_dsn: Optional[str] = None,
                        probes: int = 3, force: bool = False) -> Identity:
    """As :func:`finlive.check_session`: ``(pid, backend_start)`` or SessionPoolingError."""
    require_async(conn, "check_session")
    return await run_async(check_steps(conn, probe_dsn, probes, force))


async def verified_identity(conn: AsyncConnection) -> Identity:
    """The server session ``conn`` was verified on, checking it first if needed."""
    require_async(conn, "verified_identity")
    return await run_async(verified_identity_steps(conn))


async def mark(conn: AsyncConnection, job_id: Optional[int], run_id: Optional[int] = None,
               stage: Optional[str] = None) -> Optional[int]:
    """As :func:`finlive.mark`: the fencing token, or None if another session owns the job."""
    require_async(conn, "mark")
    return await run_async(mark_steps(conn, job_id, run_id, stage))


async def clear(conn: AsyncConnection, job_id: Optional[int]) -> bool:
    """As :func:`finlive.clear`: True if this session owned the job."""
    require_async(conn, "clear")
    return await run_async(clear_steps(conn, job_id))


async def owner_of(conn: AsyncConnection, job_id: Optional[int]) -> Optional[Dict[str, Any]]:
    """As :func:`finlive.ownership.owner_of`."""
    require_async(conn, "owner_of")
    return await run_async(owner_steps(conn, job_id))


@asynccontextmanager
async def owned(conn: AsyncConnection, job_id: int, run_id: Optional[int] = None,
                stage: Optional[str] = None) -> AsyncIterator[int]:
    """As :func:`finlive.owned`, as ``async with``; yields the fencing token.

    The job is cleared when the block ends, also when it raises or its task
    is cancelled.
    """
    require_async(conn, "owned")
    token = await mark(conn, job_id, run_id, stage)
    if token is None:
        raise await run_async(already_owned_steps(conn, job_id))
    try:
        yield token
    except BaseException:
        await run_async(clear_after_error_steps(conn, job_id))
        raise
    await run_async(clear_at_end_steps(conn, job_id))


async def fenced_finalize(conn: AsyncConnection, job_id: int, token: int, *,
                          jobs_table: TableName = "jobs", status: str = "done",
                          finalize: Optional[Callable[[Any], Any]] = None) -> bool:
    """As :func:`finlive.fenced_finalize`; ``finalize(cursor)`` gets an ``AsyncCursor``
    and may be a coroutine function."""
    require_async(conn, "fenced_finalize")
    return await run_async(explained(conn, fenced_finalize_steps(
        conn, job_id, token, jobs_table, status, finalize)))


class ReapListener(ListenerCore):
    """As :class:`finlive.ReapListener`, on an ``AsyncConnection``, as an asyncio task.

    ``callback(event)`` and ``on_reconnect(lost_at)`` may be plain functions
    or coroutine functions.  ``async with`` (or ``await start()`` /
    ``await stop()``) runs the listening task; ``await poll(timeout)`` serves
    your own loop instead.
    """

    def __init__(self, dsn: str, callback: Callable[[ReapEvent], Any], *,
                 targets: Optional[Iterable[str]] = None, reconnect: bool = True,
                 on_reconnect: Optional[Callable[[float], Any]] = None,
                 reconnect_delay: float = 1.0, channel: str = CHANNEL) -> None:
        self._async_waker = _core.AsyncWaker()
        super().__init__(dsn, callback, targets=targets, reconnect=reconnect,
                         on_reconnect=on_reconnect, reconnect_delay=reconnect_delay,
                         channel=channel, driver=get_driver("psycopg"),
                         waker=self._async_waker)
        self._task: "Optional[asyncio.Task[None]]" = None

    async def connect(self) -> AsyncConnection:
        """Open the listening connection (done by start() and poll() as needed)."""
        return await run_async(self._connect_steps())

    async def close(self) -> None:
        """Close the listening connection."""
        await run_async(self._close_steps())

    async def poll(self, timeout: float = 0.0) -> List[ReapEvent]:
        """Wait up to ``timeout`` seconds for reaps; dispatch and return them."""
        return await run_async(self._poll_steps(timeout))

    async def start(self) -> "ReapListener":
        """Connect (so LISTEN is in effect when this returns) and start the task."""
        if self._task is not None:
            return self
        await self.connect()
        self._async_waker.reset()
        self._task = asyncio.ensure_future(run_async(self._run_steps()))
        return self

    async def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Stop the task (cancelling it after ``timeout`` seconds) and close the connection."""
        self._async_waker.stop()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout)
            except asyncio.TimeoutError:
                log.warning("finlive: the listener task did not stop within %ss; cancelled",
                            timeout)
            except Exception:
                log.exception("finlive: the listener task failed")
        await self.close()

    async def __aenter__(self) -> "ReapListener":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
