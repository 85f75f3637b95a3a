"""What finlive needs from a PostgreSQL driver, for psycopg2 and psycopg 3.

Everything else in the package is written once, against :class:`Driver`.
The two drivers differ in small ways that matter here:

* the server process id the connection was given at startup
  (``conn.get_backend_pid()`` against ``conn.info.backend_pid``);
* the SQLSTATE of an error (``exc.pgcode`` against ``exc.sqlstate``);
* notifications: psycopg2 collects them in ``conn.notifies`` on
  ``conn.poll()``; psycopg 3.1 (Debian 12) has no timed wait for them, so
  finlive reads them from libpq itself (``pgconn.consume_input()``,
  ``pgconn.notifies()``, both public psycopg API) and also collects those
  psycopg parsed while running a statement (``add_notify_handler``);
* psycopg 3 prepares a statement run five times on one connection, and a
  prepared statement does not survive a transaction-pooling proxy, which
  :func:`finlive.fenced_finalize` accepts: finlive runs its own statements
  with ``prepare=False``.

A driver module is imported only when it is asked for, or when a connection
of it is handed to finlive (which means the application imported it): an
application that has only one of the two never needs the other.
"""

from __future__ import annotations

import importlib
import sys
import weakref
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Type

#: The names :func:`get_driver` accepts, and the one each means.
DRIVER_NAMES = {
    "psycopg2": "psycopg2",
    "psycopg": "psycopg",
    "psycopg3": "psycopg",
}

#: libpq's PQTRANS_IDLE: psycopg2's TRANSACTION_STATUS_IDLE and psycopg 3's
#: pq.TransactionStatus.IDLE are both this value.
TRANSACTION_IDLE = 0


class Notification(NamedTuple):
    """One ``NOTIFY``, whichever driver received it."""

    channel: str
    payload: str
    pid: int


class Driver:
    """The operations finlive needs that psycopg2 and psycopg 3 spell differently."""

    #: "psycopg2" or "psycopg"
    name: str = ""
    #: whether connections of this driver can be asynchronous
    has_async: bool = False
    #: attributes of a driver exception that a finlive exception derived from
    #: it reads from the original (see :func:`finlive.errors.translate`)
    error_attributes: Tuple[str, ...] = ()

    def __init__(self, module: Any) -> None:
        self.module = module
        self.Error: Type[BaseException] = module.Error
        self.OperationalError: Type[BaseException] = module.OperationalError
        self.InterfaceError: Type[BaseException] = module.InterfaceError
        #: errors after which the connection is gone (and any ownership with it)
        self.connection_errors: Tuple[Type[BaseException], ...] = (
            module.OperationalError, module.InterfaceError)

    def __repr__(self) -> str:
        return "<finlive driver %s>" % self.name

    # -- connections ------------------------------------------------------

    def is_connection(self, obj: object) -> bool:
        raise NotImplementedError

    def is_async_connection(self, obj: object) -> bool:
        return False

    def connect(self, dsn: str, autocommit: bool, params: Dict[str, Any]) -> Any:
        raise NotImplementedError

    async def connect_async(self, dsn: str, autocommit: bool,
                            params: Dict[str, Any]) -> Any:
        raise TypeError("%s has no asynchronous connections" % self.name)

    def backend_pid(self, conn: Any) -> int:
        """The server pid the connection was given at startup (BackendKeyData)."""
        raise NotImplementedError

    def dsn(self, conn: Any) -> str:
        """The connection's parameters as a DSN, password left out."""
        raise NotImplementedError

    #: keyword arguments for ``cursor.execute`` of finlive's own statements
    execute_options: Dict[str, Any] = {}

    # -- errors -----------------------------------------------------------

    def sqlstate(self, exc: BaseException) -> Optional[str]:
        raise NotImplementedError

    def diagnostics(self, exc: BaseException) -> Tuple[str, str]:
        """The server's primary message and hint of an error ('' when absent)."""
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) or str(exc).strip()
        hint = getattr(diag, "message_hint", None) or ""
        return primary, hint

    # -- notifications ----------------------------------------------------

    def watch_notifies(self, conn: Any) -> None:
        """Start collecting the notifications of ``conn`` (before LISTEN)."""

    def take_notifies(self, conn: Any) -> List[Notification]:
        """The notifications received so far, reading what the socket has, without waiting."""
        raise NotImplementedError


class Psycopg2Driver(Driver):
    name = "psycopg2"
    error_attributes = ("pgcode", "pgerror", "diag", "cursor")

    def __init__(self, module: Any) -> None:
        super().__init__(module)
        importlib.import_module("psycopg2.extensions")
        importlib.import_module("psycopg2.errors")

    def is_connection(self, obj: object) -> bool:
        return isinstance(obj, self.module.extensions.connection)

    def connect(self, dsn: str, autocommit: bool, params: Dict[str, Any]) -> Any:
        conn = self.module.connect(dsn, **params)
        conn.autocommit = autocommit
        return conn

    def backend_pid(self, conn: Any) -> int:
        return int(conn.get_backend_pid())

    def dsn(self, conn: Any) -> str:
        return str(conn.dsn)

    def sqlstate(self, exc: BaseException) -> Optional[str]:
        return getattr(exc, "pgcode", None)

    def take_notifies(self, conn: Any) -> List[Notification]:
        conn.poll()
        got = [Notification(n.channel, n.payload, n.pid) for n in conn.notifies]
        del conn.notifies[:]
        return got


class PsycopgDriver(Driver):
    name = "psycopg"
    has_async = True
    error_attributes = ("diag", "pgconn", "pgresult")
    execute_options = {"prepare": False}

    def __init__(self, module: Any) -> None:
        super().__init__(module)
        # Notifications psycopg parsed while running a statement, per connection.
        self._received: "weakref.WeakKeyDictionary[Any, List[Notification]]" = (
            weakref.WeakKeyDictionary())

    def is_connection(self, obj: object) -> bool:
        return isinstance(obj, (self.module.Connection, self.module.AsyncConnection))

    def is_async_connection(self, obj: object) -> bool:
        return isinstance(obj, self.module.AsyncConnection)

    def connect(self, dsn: str, autocommit: bool, params: Dict[str, Any]) -> Any:
        return self.module.Connection.connect(dsn, autocommit=autocommit, **params)

    async def connect_async(self, dsn: str, autocommit: bool,
                            params: Dict[str, Any]) -> Any:
        return await self.module.AsyncConnection.connect(dsn, autocommit=autocommit,
                                                         **params)

    def backend_pid(self, conn: Any) -> int:
        return int(conn.info.backend_pid)

    def dsn(self, conn: Any) -> str:
        return str(conn.info.dsn)

    def sqlstate(self, exc: BaseException) -> Optional[str]:
        return getattr(exc, "sqlstate", None)

    def watch_notifies(self, conn: Any) -> None:
        queue: List[Notification] = []
        self._received[conn] = queue
        conn.add_notify_handler(
            lambda n: queue.append(Notification(n.channel, n.payload, n.pid)))

    def take_notifies(self, conn: Any) -> List[Notification]:
        queue = self._received.setdefault(conn, [])
        if conn.closed:
            raise self.module.OperationalError("the connection is closed")
        pgconn = conn.pgconn
        pgconn.consume_input()      # OperationalError when the connection is lost
        encoding = conn.info.encoding
        while True:
            n = pgconn.notifies()
            if n is None:
                break
            queue.append(Notification(n.relname.decode(encoding, "replace"),
                                      n.extra.decode(encoding, "replace"), n.be_pid))
        got = list(queue)
        del queue[:]
        return got


_FACTORIES: Dict[str, Callable[[Any], Driver]] = {
    "psycopg2": Psycopg2Driver,
    "psycopg": PsycopgDriver,
}
_loaded: Dict[str, Driver] = {}


def get_driver(name: Optional[str] = None) -> Driver:
    """The driver called ``name`` ("psycopg2", "psycopg" or "psycopg3").

    ``None`` picks psycopg2 when it can be imported (what finlive used
    before it knew psycopg 3, so existing applications get the same
    connections), else psycopg 3.  Raises :class:`ImportError` naming the
    Debian and PyPI packages when neither is installed.
    """
    if name is None:
        for candidate in ("psycopg2", "psycopg"):
            try:
                return get_driver(candidate)
            except ImportError:
                continue
        raise ImportError(
            "finlive needs a PostgreSQL driver: psycopg 3 (Debian: python3-psycopg; "
            "PyPI: finlive[psycopg]) or psycopg2 (Debian: python3-psycopg2; PyPI: "
            "finlive[psycopg2] or finlive[psycopg2-binary])")
    try:
        module_name = DRIVER_NAMES[name]
    except KeyError:
        raise ValueError("unknown driver %r: use one of %s"
                         % (name, ", ".join(sorted(DRIVER_NAMES)))) from None
    driver = _loaded.get(module_name)
    if driver is None:
        driver = _FACTORIES[module_name](importlib.import_module(module_name))
        _loaded[module_name] = driver
    return driver


def driver_of(conn: object) -> Driver:
    """The driver of a connection object (psycopg2, or psycopg 3 sync or async).

    Only driver modules that are already imported are considered: a
    connection of a driver means its module was imported.
    """
    for module_name in ("psycopg2", "psycopg"):
        if module_name in sys.modules:
            driver = get_driver(module_name)
            if driver.is_connection(conn):
                return driver
    raise TypeError("finlive works with psycopg2 and psycopg (3) connections, not %s.%s"
                    % (type(conn).__module__, type(conn).__qualname__))


def is_async(conn: object) -> bool:
    """Whether ``conn`` is a psycopg 3 ``AsyncConnection``."""
    return driver_of(conn).is_async_connection(conn)


def require_sync(conn: object, what: str) -> Driver:
    """The driver of ``conn``, refusing an ``AsyncConnection`` (use finlive.aio)."""
    driver = driver_of(conn)
    if driver.is_async_connection(conn):
        raise TypeError("finlive.%s needs a synchronous connection; for a psycopg "
                        "AsyncConnection use finlive.aio.%s (awaited)" % (what, what))
    return driver


def require_async(conn: object, what: str) -> Driver:
    """The driver of ``conn``, refusing anything but an ``AsyncConnection``."""
    driver = driver_of(conn)
    if not driver.is_async_connection(conn):
        raise TypeError("finlive.aio.%s needs a psycopg AsyncConnection; for a "
                        "synchronous connection use finlive.%s" % (what, what))
    return driver


def is_idle(conn: Any) -> bool:
    """No transaction open on ``conn`` (the same libpq status for both drivers)."""
    return int(conn.info.transaction_status) == TRANSACTION_IDLE


def quote_ident(name: str) -> str:
    """An SQL identifier, always double-quoted (so case and any character survive)."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'
