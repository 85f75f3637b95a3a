"""``NOTIFY finlive_reaped`` as Python callbacks.

:class:`ListenerCore` holds everything a listener does (connect and
``LISTEN``, wait, parse, filter, call back, reconnect) as :mod:`finlive._core`
operations; :class:`ReapListener` runs them in a thread or in your own loop
with either blocking driver, :class:`finlive.aio.ReapListener` as an asyncio
task on psycopg 3's ``AsyncConnection``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Set

from . import _core
from ._core import Call, Close, Connect, Steps, Waker, query
from ._driver import Driver, driver_of, get_driver, quote_ident

log = logging.getLogger("finlive")

CHANNEL = "finlive_reaped"
LISTENER_APPLICATION_NAME = "finlive-listener"
_LISTENER_PARAMS = {
    "application_name": LISTENER_APPLICATION_NAME,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class ReapEvent(NamedTuple):
    """One reap, as the reaper announced it."""

    target: str        # the jobs table, schema-qualified, each part quoted only where SQL needs it
    job_id: int
    tier: int          # 1 dead worker, 2 lost finalization, 3 backstop
    status: str        # the job's new status: done, queued or failed
    sender_pid: int    # the server process that reaped (the worker, or a finlive_reap_once caller)
    payload: str       # the raw notification payload

    @classmethod
    def parse(cls, notify: Any) -> "ReapEvent":
        """The event of a notification (anything with ``payload`` and ``pid``).

        Raises ValueError, KeyError or TypeError for a payload that is not
        the reaper's JSON.
        """
        data = json.loads(notify.payload)
        return cls(str(data["target"]), int(data["job_id"]), int(data["tier"]),
                   str(data["status"]), int(notify.pid), notify.payload)


class ListenerCore:
    """What a reap listener does, whichever way it is run.

    ``delivered`` counts the events passed to the callback,
    ``callback_errors`` the callbacks that raised.
    """

    def __init__(self, dsn: str, callback: Callable[[ReapEvent], Any], *,
                 targets: Optional[Iterable[str]] = None, reconnect: bool = True,
                 on_reconnect: Optional[Callable[[float], Any]] = None,
                 reconnect_delay: float = 1.0, channel: str = CHANNEL,
                 driver: Driver, waker: Waker) -> None:
        self.dsn = dsn
        self.callback = callback
        self.targets: Optional[Set[str]] = set(targets) if targets is not None else None
        self.reconnect = reconnect
        self.on_reconnect = on_reconnect
        self.reconnect_delay = reconnect_delay
        self.channel = channel
        self.delivered = 0
        self.callback_errors = 0
        self._driver = driver
        self._waker = waker
        self._conn: Any = None

    def _accept(self, notify: Any) -> Optional[ReapEvent]:
        """The event of one notification, or None if it is not for this listener."""
        if notify.channel != self.channel:
            return None
        try:
            event = ReapEvent.parse(notify)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("finlive: ignoring malformed %s payload %r: %s",
                        self.channel, notify.payload, e)
            return None
        if self.targets is not None and event.target not in self.targets:
            return None
        return event

    # -- operations --------------------------------------------------------------

    def _connect_steps(self) -> Steps[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = yield Connect(self._driver, self.dsn, dict(_LISTENER_PARAMS))
        try:
            self._driver.watch_notifies(conn)
            yield from query(conn, "LISTEN " + quote_ident(self.channel))
        except BaseException:
            yield Close(conn)
            raise
        self._conn = conn
        return conn

    def _close_steps(self) -> Steps[None]:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            yield Close(conn)

    def _dispatch_steps(self, notifies: List[Any]) -> Steps[List[ReapEvent]]:
        events = []
        for notify in notifies:
            event = self._accept(notify)
            if event is None:
                continue
            events.append(event)
            self.delivered += 1
            try:
                yield Call(self.callback, event)
            except Exception:
                self.callback_errors += 1
                log.exception("finlive: reap callback failed for %s", event)
        return events

    def _poll_steps(self, timeout: float) -> Steps[List[ReapEvent]]:
        conn = yield from self._connect_steps()
        driver = driver_of(conn)
        notifies = driver.take_notifies(conn)      # anything already received
        if not notifies and (yield _core.Wait(conn, timeout, self._waker)):
            notifies = driver.take_notifies(conn)
        return (yield from self._dispatch_steps(notifies))

    def _run_steps(self) -> Steps[None]:
        waker = self._waker
        while not waker.stopped:
            try:
                yield from self._poll_steps(1.0)
            except self._driver.connection_errors as e:
                lost_at = time.time()
                log.warning("finlive: listener connection lost: %s", str(e).strip())
                try:
                    yield from self._close_steps()
                except self._driver.Error:
                    pass
                if not self.reconnect:
                    return
                while not waker.stopped:
                    if (yield _core.Sleep(self.reconnect_delay, waker)):
                        return
                    try:
                        yield from self._connect_steps()
                    except self._driver.Error as e2:
                        log.warning("finlive: listener reconnect failed: %s", str(e2).strip())
                        continue
                    if self.on_reconnect is not None:
                        try:
                            yield Call(self.on_reconnect, lost_at)
                        except Exception:
                            log.exception("finlive: on_reconnect failed")
                    break


class ReapListener(ListenerCore):
    """Calls ``callback(event)`` for every reap announced on ``finlive_reaped``.

    ``dsn`` must reach the database the reaper works on (``finlive.database``
    for the background worker).  Notifications are delivered after the
    reaping transaction commits, so the job's new status is visible when
    the callback runs.

    Use it as a background thread (``start()``/``stop()``, or ``with``), or
    drive it from your own loop with ``poll(timeout)``.  An exception in the
    callback is logged and does not stop the listener.  When the connection
    drops, the listener reconnects (with ``reconnect=True``) and calls
    ``on_reconnect(disconnected_at)``: reaps committed while it was away were
    not delivered; read ``finlive_reap_log`` from that time to catch up.
    ``targets`` restricts the callbacks to those jobs tables (as the payload
    names them).  ``driver`` is ``"psycopg2"`` or ``"psycopg"`` (default:
    psycopg2 when installed, else psycopg 3).
    """

    def __init__(self, dsn: str, callback: Callable[[ReapEvent], Any], *,
                 targets: Optional[Iterable[str]] = None, reconnect: bool = True,
                 on_reconnect: Optional[Callable[[float], Any]] = None,
                 reconnect_delay: float = 1.0, channel: str = CHANNEL,
                 driver: Optional[str] = None) -> None:
        self._thread_waker = _core.ThreadWaker()
        super().__init__(dsn, callback, targets=targets, reconnect=reconnect,
                         on_reconnect=on_reconnect, reconnect_delay=reconnect_delay,
                         channel=channel, driver=get_driver(driver), waker=self._thread_waker)
        self._thread: Optional[threading.Thread] = None

    def connect(self) -> Any:
        """Open the listening connection (done by start() and poll() as needed)."""
        return _core.run(self._connect_steps())

    def close(self) -> None:
        """Close the listening connection."""
        _core.run(self._close_steps())

    def poll(self, timeout: float = 0.0) -> List[ReapEvent]:
        """Wait up to ``timeout`` seconds for reaps; dispatch and return them."""
        return _core.run(self._poll_steps(timeout))

    def _run(self) -> None:
        _core.run(self._run_steps())

    def start(self) -> "ReapListener":
        """Connect (so LISTEN is in effect when this returns) and start the thread."""
        if self._thread is not None:
            return self
        self.connect()
        self._thread_waker.reset()
        self._thread = threading.Thread(target=self._run, name="finlive-listener",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Stop the thread (waiting up to ``timeout`` seconds) and close the connection."""
        self._thread_waker.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def __enter__(self) -> "ReapListener":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
