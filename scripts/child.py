"""The process a script runs in (R9.1, R9.3): started by scripts/host.py as
`python -I child.py <script file> <memory limit in MiB>`, with an environment that holds no
database credentials, and nothing of Django imported: a script reaches the system only
through the host object, whose calls go back to the host over this process's standard
input and output, one JSON message per line.

host -> child: {"op": "main", "params": {...}, "alert_email": "...", "call": {...} or null}
               | {"op": "reply", "value": ..., "error": ...} | {"op": "close"}
child -> host: {"op": "ready"} or {"op": "failed", "error": traceback} after loading;
               {"op": "call", "method": "query", "args": [...], "kwargs": {...}}, answered
               by a reply; {"op": "note", "method": "log" | "alert" | "send_mail", ...},
               not answered (checked here, so the script still gets its error at once);
               {"op": "done", "error": null or traceback} after each main().

With `call_processed` the host sends the call's row of v_calls along with the event (read
for a whole batch of calls at once): `host.call(id)` of that call, and a query of it by id
(`SELECT <columns> FROM v_calls WHERE id = %s`, the port of Tariscope's
`... FROM viCalls WHERE ID=@callid`), are answered from it without a round trip.

A script's own print() goes to the event log as a log line, never into the protocol.
"""
import contextlib
import datetime
import decimal
import importlib.util
import io
import json
import re
import sys
import traceback

# Standard output is the protocol: keep it, and let print() go elsewhere.
_PROTOCOL_OUT = sys.stdout
_PROTOCOL_IN = sys.stdin


def _default(value):
    """A value json cannot write: a datetime, date or Decimal tagged, as the host sends them
    (so that a query's parameters reach the database with their types); bytes as text."""
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} cannot be sent to the host")


def _send(message: dict) -> None:
    _PROTOCOL_OUT.write(json.dumps(message, default=_default) + "\n")
    _PROTOCOL_OUT.flush()


def _typed(value: dict):
    """The host's tagged values back as Python's: {"$decimal": "1.20"} -> Decimal("1.20")."""
    if len(value) == 1:
        (tag, text), = value.items()
        if tag == "$decimal":
            return decimal.Decimal(text)
        if tag == "$datetime":
            return datetime.datetime.fromisoformat(text)
        if tag == "$date":
            return datetime.date.fromisoformat(text)
    return value


# The host writes the next events' messages ahead of us: those read while waiting for a
# reply wait here for their turn.
_AHEAD: list[dict] = []


def _receive() -> dict:
    line = _PROTOCOL_IN.readline()
    if not line:
        raise SystemExit(0)  # the host went away
    return json.loads(line, object_hook=_typed)


def _next_event() -> dict:
    return _AHEAD.pop(0) if _AHEAD else _receive()


class HostError(Exception):
    """What the host answered to a call it refused (a query on another table, a bad mail
    address...)."""


LEVELS = ("warning", "critical")
# A query of one call by its id, with plain column names (or *): answered from the row sent
# with the event. Anything else (an alias, a quoted or upper-case name, a join) goes to the
# database, so that the answer is exactly what the database would give.
_BY_ID = re.compile(r"\s*select\s+(?P<columns>\*|[a-z_]+(?:\s*,\s*[a-z_]+)*)\s+from\s+v_calls"
                    r"\s+where\s+id\s*=\s*%s\s*;?\s*", re.IGNORECASE)


class Host:
    """What a script's init(host) receives (docs/scripts.md, "The host API")."""

    closing = False

    def __init__(self):
        self._event_call = None  # (id, row or None): the call of the current event
        self._alert_email = ""

    def _event_start(self, message: dict) -> None:
        params = message.get("params") or {}
        self._alert_email = message.get("alert_email") or ""
        self._event_call = (params.get("id"), message["call"]) if "call" in message else None

    def _note(self, method: str, *args, **kwargs) -> None:
        _send({"op": "note", "method": method, "args": args, "kwargs": kwargs})

    def _known_call(self, call_id):
        """(True, row or None) when `call_id` is the event's call, sent with it."""
        if self._event_call is not None and call_id is not None and \
                str(call_id) == str(self._event_call[0]):
            return True, self._event_call[1]
        return False, None

    def _call(self, method: str, *args, **kwargs):
        _send({"op": "call", "method": method, "args": args, "kwargs": kwargs})
        while True:
            message = _receive()
            if message.get("op") == "reply":
                if message.get("error"):
                    raise HostError(message["error"])
                return message.get("value")
            if message.get("op") == "close":
                self.closing = True
            if message.get("op") in ("main", "close"):
                _AHEAD.append(message)

    def log(self, text) -> None:
        self._note("log", str(text))

    def send_mail(self, to, subject, body) -> None:
        recipients = [address.strip() for address in str(to or "").split(",")
                      if address.strip()] or \
            [address.strip() for address in self._alert_email.split(",") if address.strip()]
        if not recipients:
            raise HostError("ValueError: no recipient: the script gave none and "
                            "TARISCOPE_ALERT_EMAIL is not set")
        self._note("send_mail", recipients, str(subject), str(body))

    def alert(self, level, reason, call_id=None, subscriber_id=None) -> None:
        if level not in LEVELS:
            raise HostError(f"ValueError: an alert's level is warning or critical, not {level!r}")
        self._note("alert", str(level), str(reason), call_id=_whole(call_id),
                   subscriber_id=_whole(subscriber_id))

    def call(self, id):  # noqa: A002 (the pinned name)
        known, row = self._known_call(id)
        if known:
            return dict(row) if row is not None else None
        return self._call("call", id)

    def subscriber(self, id):  # noqa: A002 (the pinned name)
        return self._call("subscriber", id)

    def holidays(self, year, device_id):
        """The holidays of a device's node in `year` (its country's public holidays and the
        node's own days, the calendar rating uses), as a sorted list of dates."""
        return self._call("holidays", year, device_id)

    def close_subscriber(self, subscriber_id, reason):
        """Close the subscriber's outgoing external calls on the PBX (R8)."""
        return self._call("close_subscriber", subscriber_id, str(reason))

    def query(self, sql, params=None) -> list:
        params = list(params or [])
        if isinstance(sql, str) and len(params) == 1:
            match = _BY_ID.fullmatch(sql)
            known, row = self._known_call(params[0]) if match else (False, None)
            if known and (row is None or match["columns"] == "*"
                          or all(name.strip() in row for name in match["columns"].split(","))):
                if row is None:
                    return []
                if match["columns"] == "*":
                    return [dict(row)]
                return [{name.strip(): row[name.strip()]
                         for name in match["columns"].split(",")}]
        return self._call("query", sql, params)


def _whole(value):
    """An id as the host stores it: a whole number, or None."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HostError(f"ValueError: an id is a whole number, not {value!r}") from None


class _LogWriter(io.TextIOBase):
    """print() inside a script: each line becomes host.log()."""

    def __init__(self, host: Host):
        self.host, self.pending = host, ""

    def write(self, text):
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.host.log(line)
        return len(text)


def _limit_memory(mebibytes: int) -> None:
    if mebibytes > 0:
        import resource

        limit = mebibytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _load(path: str):
    """The script's one class with init() and main(), instantiated."""
    spec = importlib.util.spec_from_file_location("tariscope_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [value for value in vars(module).values()
               if isinstance(value, type) and value.__module__ == module.__name__
               and callable(getattr(value, "main", None))]
    if len(classes) != 1:
        raise TypeError(f"{path}: a script defines exactly one class with main(self, params); "
                        f"found {len(classes)}")
    return classes[0]()


def main() -> None:
    path, memory = sys.argv[1], int(sys.argv[2])
    host = Host()
    sys.stdin = io.StringIO()  # a script must not read the protocol
    writer = _LogWriter(host)
    with contextlib.redirect_stdout(writer):
        try:
            _limit_memory(memory)
            script = _load(path)
            init = getattr(script, "init", None)
            if callable(init):
                init(host)
        except BaseException:  # a syntax error, a failing init: the host reports it
            _send({"op": "failed", "error": traceback.format_exc()})
            return
        _send({"op": "ready"})
        while True:
            message = _next_event()
            if message.get("op") == "close":
                host.closing = True
                return
            if message.get("op") != "main":
                continue
            host._event_start(message)
            try:
                script.main(message.get("params") or {})
                error = None
            except MemoryError:
                error = "MemoryError: the script went over its memory limit\n" + \
                    traceback.format_exc()
            except Exception:
                error = traceback.format_exc()
            if writer.pending:
                writer.write("\n")
            _send({"op": "done", "error": error})


if __name__ == "__main__":
    main()
