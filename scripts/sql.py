"""R9.1: `host.query`, the read-only SQL that scripts run over the view `v_calls`.

A script may read `v_calls` and nothing else, whatever it sends:
- PostgreSQL: the query runs in a read-only transaction under the role
  `tariscope_script_reader` (SET LOCAL ROLE), which may select from the view only (the
  migration scripts/0001 creates it), with a statement timeout;
- SQLite (the embedded default): an authorizer allows reading `v_calls` (and, through it,
  the tables it is made of) and refuses every other table, any write and any PRAGMA; a
  progress handler ends a query that runs past the timeout.
"""
import sqlite3
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection, transaction
from django.db.backends.signals import connection_created

VIEW = "v_calls"
ROLE = "tariscope_script_reader"
MAX_ROWS = 10_000


class QueryRefused(Exception):
    """The query reads something other than v_calls, writes, or ran too long."""


def _local(start, zone):
    """SQLite's tariscope_local(start, zone): a UTC start as the view stores it, in `zone`."""
    if start is None:
        return None
    try:
        moment = datetime.fromisoformat(str(start)).replace(tzinfo=ZoneInfo("UTC"))
        return moment.astimezone(ZoneInfo(zone or "UTC")).replace(tzinfo=None).isoformat(" ")
    except (ValueError, KeyError):
        return str(start)


def _register(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("tariscope_local", 2, _local, deterministic=True)


def sql_functions_register() -> None:
    """Give every SQLite connection the functions the view needs (scripts.apps)."""
    connection_created.connect(_register, dispatch_uid="scripts.sql.functions")


def query_read_only(sql: str, params=None, *, timeout: float = 5.0) -> list[dict]:
    """Run a script's SELECT over v_calls; rows as dicts (at most MAX_ROWS)."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("the query must be a non-empty string")
    params = list(params or [])
    if connection.vendor == "postgresql":
        return _postgresql(sql, params, timeout)
    if connection.vendor == "sqlite":
        return _sqlite(sql, params, timeout)
    raise QueryRefused(f"host.query is not available on {connection.vendor}")


def _rows(cursor, converters: dict | None = None) -> list[dict]:
    names = [column[0] for column in cursor.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchmany(MAX_ROWS)]
    for name in set(names) & set(converters or {}):
        for row in rows:
            if row[name] is not None:
                row[name] = converters[name](row[name])
    return rows


# SQLite gives the view's money as a number (1.0000 stored as 1) and its times as text: the
# columns of v_calls by their names, as PostgreSQL gives them (cost with the column's four
# decimal places).
_COST_PLACES = Decimal("0.0001")
_SQLITE_TYPES = {"cost": lambda value: Decimal(str(value)).quantize(_COST_PLACES),
                 "calldatetime": lambda value: datetime.fromisoformat(str(value)),
                 "calldatetime_utc": lambda value: datetime.fromisoformat(str(value)).replace(
                     tzinfo=UTC)}


def _sqlite_parameter(value):
    """A parameter as SQLite compares it with the view's columns: a time as the text Django
    stores (UTC, "YYYY-MM-DD HH:MM:SS"; a time without zone is taken as written, as
    `calldatetime` is local), money as a number."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _postgresql(sql: str, params: list, timeout: float) -> list[dict]:
    """Inside a savepoint that is always rolled back, so the read-only mode, the timeout
    and the role end with the query whatever transaction surrounds it. The script's text
    is a subquery: one SELECT, never a second statement (`; RESET ROLE; DELETE ...`) nor a
    data-modifying WITH."""
    from psycopg2 import errors

    statement = f"SELECT * FROM ({sql.strip().rstrip(';')}) AS script_query"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        if cursor.fetchone() is None:
            raise QueryRefused(f"the role {ROLE} is missing: run `CREATE ROLE {ROLE} NOLOGIN; "
                               f"GRANT SELECT ON {VIEW} TO {ROLE}; GRANT {ROLE} TO <the "
                               "application's user>` as a database administrator")
        try:
            with transaction.atomic():
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute("SELECT set_config('statement_timeout', %s, true)",
                               [str(max(1, int(timeout * 1000)))])
                cursor.execute(f"SET LOCAL ROLE {ROLE}")
                cursor.execute(statement, params)
                rows = _rows(cursor)
                transaction.set_rollback(True)
            return rows
        except DatabaseError as exc:  # Django's wrapper; the driver's error is the cause
            cause = exc.__cause__ or exc
            if isinstance(cause, errors.InsufficientPrivilege):
                problem = f"scripts may read only {VIEW}: {_first_line(cause)}"
            elif isinstance(cause, errors.QueryCanceled):
                problem = f"the query ran longer than {timeout:g} s"
            elif isinstance(cause, errors.ReadOnlySqlTransaction):
                problem = f"scripts may not write: {_first_line(cause)}"
            else:  # a syntax error, an unknown column...
                problem = _first_line(cause)
            raise QueryRefused(problem) from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
# The tables v_calls is made of: SQLite reports a LEFT JOIN of the view as a read of no
# column of the joined table, without naming the view.
_VIEW_TABLES = {"billing_call", "billing_device", "billing_subscriber",
                "billing_subscribergroup", "observers_observerprofile"}


def _sqlite(sql: str, params: list, timeout: float) -> list[dict]:
    connection.ensure_connection()
    raw = connection.connection

    def authorize(action, first, second, database, view):
        if action not in _ALLOWED:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and first != VIEW and view != VIEW and not (
                second == "" and first in _VIEW_TABLES):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    deadline = time.monotonic() + timeout
    raw.set_authorizer(authorize)
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql.replace("%s", "?"), [_sqlite_parameter(p) for p in params])
            return _rows(cursor, _SQLITE_TYPES)
        finally:
            cursor.close()
    except sqlite3.DatabaseError as exc:
        if "interrupted" in str(exc):
            raise QueryRefused(f"the query ran longer than {timeout:g} s") from None
        if "not authorized" in str(exc) or "prohibited" in str(exc):
            raise QueryRefused(f"scripts may read only {VIEW}: {exc}") from None
        raise QueryRefused(str(exc)) from None
    finally:
        raw.set_authorizer(None)
        raw.set_progress_handler(None, 0)
