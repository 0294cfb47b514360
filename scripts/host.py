"""R9.1, R9.3: the script host. Each script runs in a process of its own (scripts/child.py),
never in a collector or a worker: a script that raises, hangs, eats memory or does not even
compile is reported in its outcome and the host goes on. What a script may do goes through
the host API (docs/scripts.md), served here:

- `log(text)`, `alert(level, reason, call_id=None, subscriber_id=None)`: kept in the outcome
  (`ScriptRun`), for the event log and the alerts list;
- `send_mail(to, subject, body)`: sent with Django's mail settings (EMAIL_URL); an empty
  `to` is TARISCOPE_ALERT_EMAIL;
- `call(id)`, `subscriber(id)`: plain dicts; `query(sql, params)`: read-only SQL over the
  view v_calls (scripts/sql.py).

Limits of each process: `timeout` seconds of wall-clock time per main() (then the process is
killed, and started again for the next event), `memory_mb` of address space (RLIMIT_AS), and
an environment without the database's address, password or the SECRET_KEY. A script file
that changes is loaded again at its next event.
"""
import contextlib
import json
import os
import selectors
import smtplib
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.core.mail import EmailMessage

from billing.models import Device, Subscriber
from billing.selectors import HolidayCalendar
from observers.backoff import backoff
from scripts.events import action_call
from scripts.mail import mail_config, mail_connection
from scripts.sql import QueryRefused, query_read_only

CHILD = Path(__file__).resolve().parent / "child.py"
LEVELS = ("warning", "critical")
NOTES = frozenset({"log", "alert", "send_mail"})  # host calls that are not answered
NOT_READ = object()  # run(call=...): the event's call was not read beforehand
START_SECONDS = 10.0  # loading a script (its imports, init) may take this long
RESTART_MAX_SECONDS = 60.0
# Bytes of main() messages written ahead of a script: well under a pipe's 64 KiB, so that
# writing one never blocks while the script writes to us.
WINDOW_BYTES = 32 * 1024
# What a script's process inherits from ours: enough to run Python, no credentials.
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")


class ScriptError(Exception):
    """The script could not be loaded or did not finish (the outcome's `error`)."""


@dataclass
class ScriptRun:
    """What one event did: the lines logged, mails sent, alerts raised, and the error (a
    traceback, or why the script was stopped), if any."""

    log: list[str] = field(default_factory=list)
    mail: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _untagged(value: dict):
    """The script's tagged values (scripts/child.py) back as Python's."""
    if len(value) == 1:
        (tag, text), = value.items()
        try:
            if tag == "$decimal":
                return Decimal(text)
            if tag == "$datetime":
                return datetime.fromisoformat(text)
            if tag == "$date":
                return date.fromisoformat(text)
        except (TypeError, ValueError, ArithmeticError):
            return value
    return value


def _tagged(value):
    """json.dumps's `default`: a Decimal, datetime or date as a tagged object that
    scripts/child.py turns back into one (money stays exact); anything else as its text."""
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return str(value)


class ScriptProcess:
    """One script's process, started on first use and again after it was stopped."""

    def __init__(self, path: Path, *, timeout: float = 10.0, memory_mb: int = 256,
                 send_mails: bool = True):
        self.path = Path(path)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.send_mails = send_mails
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self._buffer = b""
        self._loaded_mtime = None
        self._run: ScriptRun | None = None
        self._timeout = timeout  # the current event's
        # Restarts with back-off: after a process lost (not loaded, stopped at its timeout,
        # crashed) twice in a row, the next start waits 1 s, 2 s ... up to RESTART_MAX_SECONDS;
        # the events meanwhile are not run, and say why. An edit of the file starts it at once.
        self._losses = 0
        self._restart_at = 0.0
        self._lost_why = ""
        self._lost_mtime = None

    # -- the process ----------------------------------------------------------------------

    def _start(self) -> None:
        environment = {name: os.environ[name] for name in INHERITED if name in os.environ}
        environment["PYTHONIOENCODING"] = "utf-8"
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept with the process)
        self._loaded_mtime = self.path.stat().st_mtime_ns
        self._process = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), str(self.path), str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=environment, cwd=str(self.path.parent), start_new_session=True)
        self._buffer = b""
        deadline = time.monotonic() + START_SECONDS
        message = self._receive(deadline)
        # init() and the module's own code may log, print and query already.
        while message is not None and message.get("op") in ("note", "call"):
            if message["op"] == "note":
                self._note(message)
            else:
                self._serve(message)
            message = self._receive(deadline)
        if message is None or message.get("op") != "ready":
            error = (message or {}).get("error") or self._gone("did not start")
            self.stop()
            raise ScriptError(f"{self.path.name} could not be loaded:\n{error}")

    def _gone(self, what: str) -> str:
        """Why the process ended, with what it wrote to its standard error."""
        stderr = b""
        if self._stderr is not None:
            self._stderr.seek(0)
            stderr = self._stderr.read()[-4000:]
        code = self._process.poll() if self._process else None
        return f"the script's process {what} (exit code {code})\n" + stderr.decode(
            "utf-8", "replace")

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, 9)
            self._process.wait(10)
            for pipe in (self._process.stdin, self._process.stdout):
                pipe.close()
        if self._stderr is not None:
            self._stderr.close()
        self._process, self._stderr = None, None

    def close(self) -> None:
        """Tell the script the host is stopping (host.closing), then end its process."""
        if self._process is not None and self._process.poll() is None:
            try:
                self._write({"op": "close"})
                self._process.wait(2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.stop()

    def _write(self, message: dict) -> None:
        self._process.stdin.write((json.dumps(message, default=_tagged) + "\n").encode())
        self._process.stdin.flush()

    def _receive(self, deadline: float) -> dict | None:
        """The child's next message, or None when it ended or the deadline passed."""
        stdout = self._process.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line, object_hook=_untagged)
        except ValueError:
            return {"op": "done", "error": f"the script's process sent {line[:200]!r}"}

    # -- events -------------------------------------------------------------------------

    def run(self, params: dict, *, timeout: float | None = None,
            call=NOT_READ) -> ScriptRun:
        """Call the script's main(params); its outcome, whatever happened. `timeout` (the
        binding's) overrides the process's own; `call` is the event's call, its row of
        v_calls read beforehand (None: not there), which the script then gets without a
        round trip."""
        return scripts_run([Batch(self, [(params, call)], timeout)])[0][0]

    def _message(self, params: dict, call) -> bytes:
        message = {"op": "main", "params": params, "alert_email": mail_config().alert_email}
        if call is not NOT_READ:
            message["call"] = call
        return (json.dumps(message, default=_tagged) + "\n").encode()

    def _ready_for(self) -> None:
        """The process, started (again) if it ended or its file was edited since."""
        if self._process is not None and (self._process.poll() is not None
                                          or self._edited()):
            self.stop()
        if self._process is None:
            self._start_or_wait()

    def _edited(self) -> bool:
        try:
            return self.path.stat().st_mtime_ns != self._loaded_mtime
        except OSError:
            return True

    def _start_or_wait(self) -> None:
        """Start the process, unless it was lost again and again and its back-off has not
        passed (an edited file is tried at once)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise ScriptError(f"{self.path.name} cannot be read: {exc}") from None
        left = self._restart_at - time.monotonic()
        if left > 0 and mtime == self._lost_mtime:
            raise ScriptError(f"{self.path.name} not run: its process was lost {self._losses} "
                              f"times in a row; next start in {left:.0f} s. The last "
                              f"time:\n{self._lost_why}")
        try:
            self._start()
        except ScriptError as exc:
            self._lost(str(exc))
            raise

    def _lost(self, why: str) -> None:
        self._losses += 1
        self._lost_why = why
        with contextlib.suppress(OSError):
            self._lost_mtime = self.path.stat().st_mtime_ns
        delay = 0.0 if self._losses < 2 else backoff(self._losses - 2, 1, RESTART_MAX_SECONDS)
        self._restart_at = time.monotonic() + delay

    def _note(self, message: dict) -> None:
        """A call the script does not wait for (log, alert, send_mail: scripts/child.py
        checked its arguments)."""
        method = message.get("method")
        if method not in NOTES:
            return
        try:
            getattr(self, f"_host_{method}")(*message.get("args", []),
                                             **message.get("kwargs", {}))
        except (ValueError, TypeError) as exc:
            self._run.log.append(f"host.{method}: {type(exc).__name__}: {exc}")

    def _serve(self, message: dict) -> None:
        method = message.get("method")
        handler = getattr(self, f"_host_{method}", None)
        try:
            if handler is None:
                raise QueryRefused(f"the host has no method {method!r}")
            value = handler(*message.get("args", []), **message.get("kwargs", {}))
            reply = {"op": "reply", "value": value}
        except (QueryRefused, ValueError, TypeError, OSError) as exc:
            reply = {"op": "reply", "error": f"{type(exc).__name__}: {exc}"}
        self._write(reply)

    # -- the host API ---------------------------------------------------------------------

    def _host_log(self, text: str) -> None:
        self._run.log.append(str(text)[:10_000])

    def _host_send_mail(self, to, subject: str, body: str) -> None:
        recipients = mail_recipients(to)
        if self.send_mails:
            config = mail_config()
            try:
                EmailMessage(str(subject), str(body), config.sender, recipients,
                             connection=mail_connection(config)).send()
            except (OSError, smtplib.SMTPException) as exc:
                self._run.log.append(f"mail to {', '.join(recipients)} not sent: "
                                     f"{type(exc).__name__}: {exc}")
                return
        self._run.mail.append({"to": recipients, "subject": str(subject), "body": str(body)})

    def _host_alert(self, level: str, reason: str, call_id=None, subscriber_id=None) -> None:
        if level not in LEVELS:
            raise ValueError(f"an alert's level is warning or critical, not {level!r}")
        self._run.alerts.append({"level": level, "reason": str(reason)[:1000],
                                 "call_id": _id_or_none(call_id),
                                 "subscriber_id": _id_or_none(subscriber_id)})

    def _host_call(self, call_id) -> dict | None:
        rows = query_read_only("SELECT * FROM v_calls WHERE id = %s", [_id_or_none(call_id)])
        return rows[0] if rows else None

    def _host_subscriber(self, subscriber_id) -> dict | None:
        subscriber = (Subscriber.objects.filter(pk=_id_or_none(subscriber_id))
                      .select_related("group").first())
        if subscriber is None:
            return None
        return {"id": subscriber.pk, "full_name": subscriber.full_name,
                "group": subscriber.group.name if subscriber.group else None,
                "group_id": subscriber.group_id, "account_number": subscriber.account_number,
                "type": subscriber.type}

    def _host_query(self, sql: str, params: list) -> list[dict]:
        return query_read_only(sql, params, timeout=min(self._timeout, 30.0))

    def _host_holidays(self, year, device_id) -> list[date]:
        try:
            year = int(year)
        except (TypeError, ValueError):
            raise ValueError(f"a year is a whole number, not {year!r}") from None
        device = Device.objects.select_related("node").filter(pk=_id_or_none(device_id)).first()
        if device is None:
            raise ValueError(f"no device {device_id!r}")
        calendar = HolidayCalendar(device.node)
        first = date(year, 1, 1)
        return [day for day in (first + timedelta(days=n) for n in range(366))
                if day.year == year and calendar.is_holiday(day)]

    def _host_close_subscriber(self, subscriber_id, reason) -> str:
        """R9.5: close the subscriber (restrictions, R8): "closed", or "closed already"."""
        try:
            return action_call("close_subscriber", subscriber_id=_id_or_none(subscriber_id),
                               reason=f"{reason} (script {self.path.name})",
                               script=self.path.name)
        except LookupError as exc:
            raise ValueError(str(exc)) from None


class Batch:
    """Events for one script's process, run in order: main() messages are written ahead of
    the script (up to WINDOW_BYTES not yet done), so the host's work and the script's overlap,
    and the processes of several scripts run side by side (scripts_run). Each event may take
    `timeout` seconds from the moment the one before it finished."""

    def __init__(self, process: ScriptProcess, items: list[tuple[dict, object]],
                 timeout: float | None = None):
        self.process = process
        self.items = items
        self.timeout = process.timeout if timeout is None else timeout
        self.runs = [ScriptRun() for _ in items]
        self.sent = self.done = 0
        self.pending: list[int] = []  # sizes of the messages sent and not done yet
        self.deadline = 0.0
        self._next: tuple[int, bytes] | None = None  # the next message, encoded

    @property
    def finished(self) -> bool:
        return self.done >= len(self.items)

    def _fail_rest(self, error: str) -> None:
        for run in self.runs[self.done:]:
            run.error = error
        self.done = len(self.items)

    def start(self) -> None:
        """Start (or restart) the process and send what fits; events that cannot run get
        the reason as their error."""
        process = self.process
        process._run = self.runs[self.done]
        process._timeout = self.timeout
        try:
            process._ready_for()
        except ScriptError as exc:
            self._fail_rest(str(exc))
            return
        self.sent, self.pending = self.done, []
        self.deadline = time.monotonic() + self.timeout
        self.send()

    def send(self) -> None:
        process = self.process
        while self.sent < len(self.items):
            if self._next is None or self._next[0] != self.sent:
                self._next = (self.sent, process._message(*self.items[self.sent]))
            data = self._next[1]
            if self.pending and sum(self.pending) + len(data) > WINDOW_BYTES:
                return  # written when an event before it is done
            try:
                process._process.stdin.write(data)
                process._process.stdin.flush()
            except OSError as exc:  # the script's pipe broke
                self.lost(process._gone(f"could not be reached ({exc})"))
                return
            self.pending.append(len(data))
            self.sent += 1

    def lost(self, error: str) -> None:
        """The process ended or was stopped during the current event: that event fails with
        `error`; the others go to a new process."""
        process = self.process
        self.runs[self.done].error = error
        process.stop()
        process._lost(error)
        self.done += 1
        if not self.finished:
            self.start()

    def readable(self) -> None:
        """Read what the script's process wrote and act on each whole message."""
        process = self.process
        try:
            chunk = os.read(process._process.stdout.fileno(), 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.lost(process._gone("ended"))
            return
        process._buffer += chunk
        while b"\n" in process._buffer and not self.finished:
            line, process._buffer = process._buffer.split(b"\n", 1)
            try:
                message = json.loads(line, object_hook=_untagged)
            except ValueError:
                message = {"op": "done", "error": f"the script's process sent {line[:200]!r}"}
            process._run = self.runs[self.done]
            operation = message.get("op")
            if operation == "note":
                process._note(message)
            elif operation == "call":
                try:
                    process._serve(message)
                except OSError as exc:
                    self.lost(process._gone(f"could not be reached ({exc})"))
                    return
            elif operation == "done":
                self.runs[self.done].error = message.get("error")
                process._losses = 0
                self.done += 1
                self.pending.pop(0)
                self.deadline = time.monotonic() + self.timeout
                self.send()

    def expired(self) -> None:
        self.lost(f"stopped after {self.timeout:g} s (the binding's timeout)")


def scripts_run(batches: list[Batch]) -> list[list[ScriptRun]]:
    """Run each batch's events in its script's process, all the processes side by side;
    each batch's outcomes in the order of its events."""
    for batch in batches:
        if batch.items:
            batch.start()
    with selectors.DefaultSelector() as selector:
        while True:
            waiting = [batch for batch in batches if not batch.finished]
            if not waiting:
                break
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
            for batch in waiting:
                selector.register(batch.process._process.stdout, selectors.EVENT_READ, batch)
            first = min(batch.deadline for batch in waiting)
            events = selector.select(max(0.0, first - time.monotonic()))
            for key, _ in events:
                key.data.readable()
            now = time.monotonic()
            for batch in waiting:
                if not batch.finished and now >= batch.deadline:
                    batch.expired()
    return [batch.runs for batch in batches]


def mail_recipients(to) -> list[str]:
    """The addresses of a script's mail: `to` (a list, or comma-separated text), or when it
    is empty TARISCOPE_ALERT_EMAIL."""
    if isinstance(to, list | tuple):
        to = ",".join(str(address) for address in to)
    recipients = [address.strip() for address in str(to or "").split(",") if address.strip()]
    if not recipients:
        recipients = mail_config().recipients
    if not recipients:
        raise ValueError("no recipient: the script gave none and TARISCOPE_ALERT_EMAIL "
                         "is not set")
    return recipients


def calls_read(ids: list[int]) -> dict[int, dict]:
    """The rows of v_calls of these calls (read as a script's query is), by id: one query
    for a batch of calls instead of one per call and script."""
    if not ids:
        return {}
    placeholders = ", ".join(["%s"] * len(ids))
    rows = query_read_only(f"SELECT * FROM v_calls WHERE id IN ({placeholders})",  # noqa: S608
                           [int(call_id) for call_id in ids], timeout=30.0)
    return {row["id"]: row for row in rows}


def _id_or_none(value):
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"an id is a whole number, not {value!r}") from None
