"""``NOTIFY finlive_reaped`` as Python callbacks."""

import json
import logging
import select
import socket
import threading
import time
from typing import NamedTuple, Optional

import psycopg2
import psycopg2.extensions

log = logging.getLogger("finlive")

CHANNEL = "finlive_reaped"


class ReapEvent(NamedTuple):
    """One reap, as the reaper announced it."""

    target: str        # the jobs table, as regclass printed it in the reaper's search_path
    job_id: int
    tier: int          # 1 dead worker, 2 lost finalization, 3 backstop
    status: str        # the job's new status: done, queued or failed
    sender_pid: int    # the server process that reaped (the worker, or a finlive_reap_once caller)
    payload: str       # the raw notification payload

    @classmethod
    def parse(cls, notify):
        data = json.loads(notify.payload)
        return cls(str(data["target"]), int(data["job_id"]), int(data["tier"]),
                   str(data["status"]), notify.pid, notify.payload)


class ReapListener:
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
    names them).
    """

    def __init__(self, dsn, callback, *, targets=None, reconnect=True,
                 on_reconnect=None, reconnect_delay=1.0, channel=CHANNEL):
        self.dsn = dsn
        self.callback = callback
        self.targets = set(targets) if targets is not None else None
        self.reconnect = reconnect
        self.on_reconnect = on_reconnect
        self.reconnect_delay = reconnect_delay
        self.channel = channel
        self.delivered = 0
        self.callback_errors = 0
        self._conn = None
        self._thread = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)

    # -- connection ---------------------------------------------------------

    def connect(self):
        """Open the listening connection (done by start() and poll() as needed)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg2.connect(self.dsn, application_name="finlive-listener",
                                keepalives=1, keepalives_idle=30,
                                keepalives_interval=10, keepalives_count=3)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("LISTEN %s" % psycopg2.extensions.quote_ident(self.channel, conn))
        self._conn = conn
        return conn

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # -- delivery -----------------------------------------------------------

    def _dispatch(self, conn):
        events = []
        while conn.notifies:
            notify = conn.notifies.pop(0)
            if notify.channel != self.channel:
                continue
            try:
                event = ReapEvent.parse(notify)
            except (ValueError, KeyError, TypeError) as e:
                log.warning("finlive: ignoring malformed %s payload %r: %s",
                            self.channel, notify.payload, e)
                continue
            if self.targets is not None and event.target not in self.targets:
                continue
            events.append(event)
            self.delivered += 1
            try:
                self.callback(event)
            except Exception:
                self.callback_errors += 1
                log.exception("finlive: reap callback failed for %s", event)
        return events

    def poll(self, timeout=0.0):
        """Wait up to ``timeout`` seconds for reaps; dispatch and return them."""
        conn = self.connect()
        events = self._dispatch(conn)   # anything already received
        if events:
            return events
        ready, _, _ = select.select([conn, self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            try:
                self._wake_r.recv(64)
            except BlockingIOError:
                pass
        if conn in ready:
            conn.poll()
            events = self._dispatch(conn)
        return events

    # -- background thread --------------------------------------------------

    def _run(self):
        while not self._stop.is_set():
            try:
                self.poll(1.0)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                lost_at = time.time()
                log.warning("finlive: listener connection lost: %s", e)
                self.close()
                if not self.reconnect:
                    return
                while not self._stop.is_set():
                    if self._stop.wait(self.reconnect_delay):
                        return
                    try:
                        self.connect()
                    except psycopg2.Error as e2:
                        log.warning("finlive: listener reconnect failed: %s", e2)
                        continue
                    if self.on_reconnect is not None:
                        try:
                            self.on_reconnect(lost_at)
                        except Exception:
                            log.exception("finlive: on_reconnect failed")
                    break

    def start(self):
        """Connect (so LISTEN is in effect when this returns) and start the thread."""
        if self._thread is not None:
            return self
        self.connect()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="finlive-listener",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 5.0):
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
