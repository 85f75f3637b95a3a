"""finlive's logic, written once for blocking and asyncio code.

Every operation (check a session, mark, clear, finalize under the fence,
listen) is a generator that *yields* the I/O it needs as small step objects
(:class:`Query`, :class:`Commit`, :class:`Connect`, ...) and receives each
result back: the sans-I/O style that psycopg 3 itself is built on.  Two
runners perform the steps: :func:`run` with blocking calls (psycopg2 and
psycopg 3's ``Connection``), :func:`run_async` with ``await`` (psycopg 3's
``AsyncConnection``).  An error of a step is thrown back into the
generator at the ``yield``, so the operations use ordinary ``try`` blocks.

So the SQL, the checks, the decisions, the error messages and the error
classification exist once; the runners are the only code that differs
between the two worlds, and only because one of them has to ``await``.
"""

from __future__ import annotations

import asyncio
import inspect
import select
import socket
import threading
from typing import (Any, Callable, Dict, Generator, List, Optional, Sequence, Set, Tuple,
                    TypeVar, Union)

from . import errors
from ._driver import Driver, driver_of, is_idle, quote_ident

T = TypeVar("T")
Row = Tuple[Any, ...]


# -- the steps --------------------------------------------------------------------

class Step:
    """One piece of I/O an operation asks its runner for."""

    __slots__ = ()


class Query(Step):
    """Run ``sql`` on ``conn``; the result is the list of rows ([] without any)."""

    __slots__ = ("conn", "sql", "params")

    def __init__(self, conn: Any, sql: str, params: Optional[Sequence[Any]] = None) -> None:
        self.conn = conn
        self.sql = sql
        self.params = params


class SetAutocommit(Step):
    __slots__ = ("conn", "on")

    def __init__(self, conn: Any, on: bool) -> None:
        self.conn = conn
        self.on = on


class Commit(Step):
    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn


class Rollback(Step):
    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn


class Connect(Step):
    """Open a connection with ``driver``; the result is the connection."""

    __slots__ = ("driver", "dsn", "params", "autocommit")

    def __init__(self, driver: Driver, dsn: str, params: Dict[str, Any],
                 autocommit: bool = True) -> None:
        self.driver = driver
        self.dsn = dsn
        self.params = params
        self.autocommit = autocommit


class Close(Step):
    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn


class Call(Step):
    """Call application code: ``fn(*args)``, awaited if it returns an awaitable.

    With ``cursor_of``, ``fn`` gets a new cursor of that connection first.
    """

    __slots__ = ("fn", "args", "cursor_of")

    def __init__(self, fn: Callable[..., Any], *args: Any, cursor_of: Any = None) -> None:
        self.fn = fn
        self.args = args
        self.cursor_of = cursor_of


class Wait(Step):
    """Wait until ``conn`` has input, ``timeout`` passes or ``waker`` is woken.

    The result is True when the connection has input.
    """

    __slots__ = ("conn", "timeout", "waker")

    def __init__(self, conn: Any, timeout: float, waker: "Waker") -> None:
        self.conn = conn
        self.timeout = timeout
        self.waker = waker


class Sleep(Step):
    """Sleep ``seconds`` unless ``waker`` is stopped; the result is True if it was."""

    __slots__ = ("seconds", "waker")

    def __init__(self, seconds: float, waker: "Waker") -> None:
        self.seconds = seconds
        self.waker = waker


Steps = Generator[Step, Any, T]


# -- wakers: how a blocked Wait or Sleep is interrupted ------------------------------

class Waker:
    """Interrupts a :class:`Wait` or :class:`Sleep`, and remembers a stop request."""

    @property
    def stopped(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


class ThreadWaker(Waker):
    """For blocking runners: a socket pair that ``select`` watches, and an Event."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def stop(self) -> None:
        self._event.set()
        self.wake()

    def wake(self) -> None:
        try:
            self._w.send(b"x")
        except OSError:
            pass

    def reset(self) -> None:
        self._event.clear()

    def fileno(self) -> int:
        return self._r.fileno()

    def drain(self) -> None:
        try:
            while self._r.recv(64):
                pass
        except (BlockingIOError, OSError):
            pass

    def sleep(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def close(self) -> None:
        self._r.close()
        self._w.close()


class AsyncWaker(Waker):
    """For the asyncio runner: an ``asyncio.Event``, created in the running loop."""

    def __init__(self) -> None:
        self._event: Optional[asyncio.Event] = None
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def event(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
            if self._stopped:
                self._event.set()
        return self._event

    def stop(self) -> None:
        self._stopped = True
        if self._event is not None:
            self._event.set()

    def reset(self) -> None:
        self._stopped = False
        self._event = None


# -- the runners ---------------------------------------------------------------------

def run(operation: Steps[T]) -> T:
    """Perform ``operation``'s steps with blocking calls; return its result."""
    value: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            step = operation.send(value) if error is None else operation.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = _perform(step)
        except BaseException as e:      # thrown into the operation, which decides
            error = e


async def run_async(operation: Steps[T]) -> T:
    """Perform ``operation``'s steps with ``await``; return its result."""
    value: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            step = operation.send(value) if error is None else operation.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = await _perform_async(step)
        except BaseException as e:
            error = e


def _perform(step: Step) -> Any:
    if isinstance(step, Query):
        options = driver_of(step.conn).execute_options
        with step.conn.cursor() as cur:
            cur.execute(step.sql, step.params, **options)
            return cur.fetchall() if cur.description is not None else []
    if isinstance(step, SetAutocommit):
        step.conn.autocommit = step.on
        return None
    if isinstance(step, Commit):
        step.conn.commit()
        return None
    if isinstance(step, Rollback):
        step.conn.rollback()
        return None
    if isinstance(step, Connect):
        return step.driver.connect(step.dsn, step.autocommit, dict(step.params))
    if isinstance(step, Close):
        step.conn.close()
        return None
    if isinstance(step, Call):
        if step.cursor_of is not None:
            with step.cursor_of.cursor() as cur:
                return step.fn(cur, *step.args)
        return step.fn(*step.args)
    if isinstance(step, Wait):
        waker = step.waker
        assert isinstance(waker, ThreadWaker)
        conn_fd = step.conn.fileno()
        ready, _, _ = select.select([conn_fd, waker.fileno()], [], [], step.timeout)
        if waker.fileno() in ready:
            waker.drain()
        return conn_fd in ready
    if isinstance(step, Sleep):
        waker = step.waker
        assert isinstance(waker, ThreadWaker)
        return waker.sleep(step.seconds)
    raise TypeError("unknown step %r" % (step,))


async def _perform_async(step: Step) -> Any:
    if isinstance(step, Query):
        options = driver_of(step.conn).execute_options
        async with step.conn.cursor() as cur:
            await cur.execute(step.sql, step.params, **options)
            return await cur.fetchall() if cur.description is not None else []
    if isinstance(step, SetAutocommit):
        await step.conn.set_autocommit(step.on)
        return None
    if isinstance(step, Commit):
        await step.conn.commit()
        return None
    if isinstance(step, Rollback):
        await step.conn.rollback()
        return None
    if isinstance(step, Connect):
        return await step.driver.connect_async(step.dsn, step.autocommit, dict(step.params))
    if isinstance(step, Close):
        await step.conn.close()
        return None
    if isinstance(step, Call):
        if step.cursor_of is not None:
            async with step.cursor_of.cursor() as cur:
                return await _awaited(step.fn(cur, *step.args))
        return await _awaited(step.fn(*step.args))
    if isinstance(step, Wait):
        waker = step.waker
        assert isinstance(waker, AsyncWaker)
        return await _wait_readable(step.conn.fileno(), step.timeout, waker.event())
    if isinstance(step, Sleep):
        waker = step.waker
        assert isinstance(waker, AsyncWaker)
        try:
            await asyncio.wait_for(waker.event().wait(), step.seconds)
        except asyncio.TimeoutError:
            return False
        return True
    raise TypeError("unknown step %r" % (step,))


async def _awaited(result: Any) -> Any:
    """``result``, awaited if it is awaitable (application code may be either)."""
    if inspect.isawaitable(result):
        return await result
    return result


async def _wait_readable(fd: int, timeout: float, wake: asyncio.Event) -> bool:
    loop = asyncio.get_running_loop()
    readable: "asyncio.Future[bool]" = loop.create_future()

    def on_readable() -> None:
        if not readable.done():
            readable.set_result(True)

    loop.add_reader(fd, on_readable)
    woken: "asyncio.Future[Any]" = asyncio.ensure_future(wake.wait())
    waiting: "Set[asyncio.Future[Any]]" = {readable, woken}
    try:
        await asyncio.wait(waiting, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(fd)
        woken.cancel()
    return readable.done()


# -- pieces the operations share -------------------------------------------------------

def not_idle_error(conn: Any) -> errors.FinliveError:
    return errors.FinliveError(
        "the connection is inside a transaction (status %d); finlive needs a "
        "dedicated connection that is idle between its calls"
        % int(conn.info.transaction_status))


def in_autocommit(conn: Any, body: Steps[T]) -> Steps[T]:
    """Run ``body`` with ``conn`` in autocommit, then put the mode back.

    Refuses a connection inside a transaction: finlive must not commit or
    roll back the caller's work.
    """
    if not is_idle(conn):
        raise not_idle_error(conn)
    previous = bool(conn.autocommit)
    if not previous:
        yield SetAutocommit(conn, True)
    try:
        return (yield from body)
    finally:
        if not previous and not conn.closed:
            yield SetAutocommit(conn, False)


def query(conn: Any, sql: str, params: Optional[Sequence[Any]] = None) -> Steps[List[Row]]:
    """A single :class:`Query` as an operation, for ``yield from`` and the runners."""
    rows: List[Row] = yield Query(conn, sql, params)
    return rows


def explained(conn: Any, operation: Steps[T]) -> Steps[T]:
    """``operation``, with a server error that means "not set up" turned into a SetupError.

    The SetupError (see :mod:`finlive.errors`) says which setup step is
    missing, with the statement to run, from one more query about the
    session (database, role, the extension's schema).
    """
    try:
        return (yield from operation)
    except Exception as exc:
        driver = driver_of(conn)
        if isinstance(exc, errors.SetupError) or not isinstance(exc, driver.Error):
            raise
        message, hint = driver.diagnostics(exc)
        kind = errors.classify(driver.sqlstate(exc), message, hint)
        if kind is None:
            raise
        facts = yield from _setup_facts(conn, driver)
        cls, function = kind
        raise errors.bridge(
            cls, exc, errors.explain(cls, function, message, facts), driver.error_attributes,
            function=function,
            database=facts.database if facts else None,
            role=facts.role if facts else None,
            schema=facts.schema if facts else None) from exc


def _setup_facts(conn: Any, driver: Driver) -> Steps[Optional[errors.SetupFacts]]:
    if conn.closed or not is_idle(conn):
        return None
    try:
        rows = yield from in_autocommit(conn, query(conn, errors.SETUP_FACTS_SQL))
    except driver.Error:
        return None
    return errors.facts_from_row(rows[0] if rows else None)


def table_sql(conn: Any, name: Union[str, Sequence[str], Any]) -> str:
    """A jobs table as SQL text, for statements that also take parameters.

    ``"jobs"``, ``"app.jobs"`` (split at the dot) or ``("my schema",
    "jobs")``: each part an identifier, quoted, so its case is kept; or an
    ``sql.Composable`` of either driver (``sql.Identifier(...)``).  A ``%``
    is doubled, as parameter substitution needs.
    """
    if hasattr(name, "as_string"):
        text = str(name.as_string(conn))
    else:
        parts = name.split(".") if isinstance(name, str) else list(name)
        if not parts or not all(isinstance(p, str) and p for p in parts):
            raise ValueError("jobs_table must be a table name, a (schema, table) pair or "
                             "an sql.Composable, not %r" % (name,))
        text = ".".join(quote_ident(p) for p in parts)
    return text.replace("%", "%%")
