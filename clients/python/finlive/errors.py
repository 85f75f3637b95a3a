"""Exceptions raised by the finlive client.

Besides the errors of ownership itself (:class:`AlreadyOwned`,
:class:`OwnershipLost`, :class:`SessionPoolingError`), the client explains
the three ways a database can be not set up for finlive, each with the
statement that fixes it (:class:`SetupError` and its subclasses).  Those
are raised in place of the driver's own error, and derive from its class as
well: code that caught ``psycopg2.errors.InsufficientPrivilege`` (or
``psycopg.errors.UndefinedFunction``, ...) around a finlive call still
catches it, and the driver's attributes (``pgcode``, ``diag``, ``sqlstate``,
...) read through to the original error, which is also ``__cause__``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple, Type


class FinliveError(Exception):
    """Base class of every error this package raises on its own."""


class SessionPoolingError(FinliveError):
    """Session-level ownership cannot hold on this connection.

    Raised before anything is marked when the connection goes through a
    proxy that does not keep one server session per client connection
    (PgBouncer with ``pool_mode = transaction`` or ``statement``): the lock
    would stay on a server session that the proxy hands to other clients,
    and this client would lose it without noticing.
    """


class AlreadyOwned(FinliveError):
    """Another live session owns the job (``finlive_mark`` returned NULL)."""

    def __init__(self, job_id: Any, owner: Optional[Mapping[str, Any]] = None) -> None:
        self.job_id = job_id
        self.owner = owner
        detail = ""
        if owner is not None:
            detail = " (pid %s since %s, stage %s)" % (
                owner.get("pid"), owner.get("since"), owner.get("stage"))
        super().__init__("job %s is owned by another live session%s" % (job_id, detail))


class OwnershipLost(FinliveError):
    """This session no longer owns a job it marked."""

    def __init__(self, job_id: Any, message: Optional[str] = None) -> None:
        self.job_id = job_id
        super().__init__(message or "ownership of job %s was lost" % job_id)


class SetupError(FinliveError):
    """The database or role is not set up for finlive; the message says what to run.

    Attributes, each None when unknown: ``function`` (the finlive function
    that failed), ``database``, ``role`` (the current user, quoted as SQL
    needs), ``schema`` (where the extension is installed, quoted).
    """

    def __init__(self, message: str, *, function: Optional[str] = None,
                 database: Optional[str] = None, role: Optional[str] = None,
                 schema: Optional[str] = None) -> None:
        super().__init__(message)
        self.function = function
        self.database = database
        self.role = role
        self.schema = schema


class ExtensionNotFound(SetupError):
    """finlive's functions do not exist for this session (SQLSTATE 42883).

    The extension is not installed in this database (run ``CREATE EXTENSION
    finlive;`` there), or it is installed in a schema that is not on the
    session's ``search_path`` (``schema`` then says which).
    """


class MissingGrant(SetupError):
    """The role may not execute a finlive function (SQLSTATE 42501).

    Taking and releasing ownership are revoked from PUBLIC: an administrator
    grants them (the message has the ``GRANT`` statement).
    """


class NotPreloaded(SetupError):
    """The server was started without finlive in ``shared_preload_libraries`` (55000)."""


# -- classification, shared by every driver and by the sync and async paths ----

class SetupFacts(NamedTuple):
    """What the server says about the session, for the messages (quoted as SQL needs)."""

    database: Optional[str]
    role: Optional[str]
    schema: Optional[str]            # the extension's schema, None if not installed
    search_path: Optional[str]
    preload: Optional[str]           # shared_preload_libraries


#: One row of SetupFacts; it calls no finlive function, so it works without one.
SETUP_FACTS_SQL = (
    "SELECT quote_ident(current_database()), quote_ident(current_user), "
    "(SELECT quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
    "   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
    "  WHERE e.extname = 'finlive'), "
    "current_setting('search_path'), "
    # pg_settings hides it from roles that may not read it (NULL then)
    "(SELECT setting FROM pg_catalog.pg_settings WHERE name = 'shared_preload_libraries')"
)

_FUNCTION_MISSING = re.compile(r"^function (?:[\w\"]+\.)?(finlive_\w+)\(.*\) does not exist")
_NO_EXECUTE = re.compile(r"^permission denied for function (finlive_\w+)")

_GRANTED = ("finlive_mark(bigint, bigint, text)", "finlive_clear(bigint)",
            "finlive_clear_all()")


def classify(sqlstate: Optional[str], message: str,
             hint: str = "") -> Optional[Tuple[Type[SetupError], Optional[str]]]:
    """Which :class:`SetupError` a server error is, and the function it names.

    None for any other error, including a 42883 or 42501 about something
    that is not a finlive function (the application's own SQL).
    """
    if sqlstate == "42883":
        m = _FUNCTION_MISSING.match(message)
        if m:
            return ExtensionNotFound, m.group(1)
    elif sqlstate == "42501":
        m = _NO_EXECUTE.match(message)
        if m:
            return MissingGrant, m.group(1)
    elif sqlstate == "55000":
        if "shared_preload_libraries" in message or "shared_preload_libraries" in hint:
            m = re.search(r"\b(finlive_\w+)", message)
            return NotPreloaded, m.group(1) if m else None
    return None


def explain(kind: Type[SetupError], function: Optional[str], server_message: str,
            facts: Optional[SetupFacts]) -> str:
    """The message of a :class:`SetupError`: what is wrong, and the statement that fixes it."""
    db = "database %s" % facts.database if facts and facts.database else "this database"
    role = facts.role if facts and facts.role else "<role>"
    if kind is ExtensionNotFound:
        if facts is not None and facts.schema is not None:
            path = ", ".join(p for p in (facts.search_path, facts.schema) if p)
            return ("finlive is installed in %s in schema %s, which is not on this session's "
                    "search_path (%s): %s. Put the schema on the search_path, e.g. "
                    "ALTER ROLE %s SET search_path = %s; (then reconnect)"
                    % (db, facts.schema, facts.search_path, server_message, role, path))
        return ("finlive is not installed in %s: %s. Run CREATE EXTENSION finlive; in that "
                "database, as its owner or a superuser (the server must also have finlive "
                "in shared_preload_libraries)." % (db, server_message))
    if kind is MissingGrant:
        prefix = ""
        if facts is not None and facts.schema is not None and facts.schema != "public":
            prefix = facts.schema + "."
        return ("role %s may not take or release finlive ownership in %s: %s (finlive_mark, "
                "finlive_clear and finlive_clear_all are revoked from PUBLIC). Run in that "
                "database, as its owner or a superuser: GRANT EXECUTE ON FUNCTION %s TO %s;"
                % (role, db, server_message, ", ".join(prefix + f for f in _GRANTED), role))
    if kind is NotPreloaded:
        current = ""
        if facts is not None and facts.preload is not None:
            current = " (it is now '%s')" % facts.preload
        return ("the server was started without finlive in shared_preload_libraries%s, so "
                "no finlive function works: %s. Add finlive to shared_preload_libraries in "
                "postgresql.conf, keeping the libraries already listed, and restart the "
                "server." % (current, server_message))
    return server_message


def facts_from_row(row: Optional[Tuple[Any, ...]]) -> Optional[SetupFacts]:
    if row is None:
        return None
    return SetupFacts(*(None if v is None else str(v) for v in row))


_bridges: Dict[Tuple[type, type], type] = {}


def _read_through(name: str) -> property:
    return property(lambda self: getattr(self.__cause__, name, None),
                    doc="The original driver error's %s." % name)


def bridge(kind: Type[SetupError], original: BaseException, message: str,
           attributes: Tuple[str, ...], **fields: Optional[str]) -> SetupError:
    """A ``kind`` error that is also an instance of ``original``'s class.

    ``attributes`` (the driver's error attributes) read through to
    ``original``.  Falls back to a plain ``kind`` if the driver's class
    cannot be combined with it.
    """
    key = (kind, type(original))
    cls = _bridges.get(key)
    if cls is None:
        namespace: Dict[str, Any] = {
            name: _read_through(name) for name in attributes if hasattr(type(original), name)}
        namespace["__module__"] = kind.__module__
        namespace["__qualname__"] = kind.__qualname__
        namespace["__doc__"] = kind.__doc__
        try:
            cls = type(kind.__name__, (kind, type(original)), namespace)
        except TypeError:
            cls = kind
        _bridges[key] = cls
    try:
        error: SetupError = cls(message, **fields)
    except Exception:
        error = kind(message, **fields)
    error.__cause__ = original
    return error
