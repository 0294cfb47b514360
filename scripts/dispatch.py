"""R9.2, R9.3: the dispatcher hands queued events to the scripts bound to them, in order.

For each QueuedEvent, oldest first, every enabled binding of its profile and event runs its
script (scripts.host.ScriptProcess, a process per script). A `call_processed` row carries
the ids of the calls one piece stored: they are scripted one by one, and every
COMMIT_CALLS calls (or COMMIT_SECONDS) one transaction records what the scripts did (the
event log, alerts, the mail they sent, which waits in OutgoingMail) together with the row's
progress (`done`). So a dispatcher killed at any moment goes on, when it starts again, from
the first call whose outcome was not committed: no call's outcome is recorded twice or
skipped, and no mail is sent twice for a call (only a crash between the mail server's
answer and the outbox's delete repeats a mail).
Mail is sent after each commit; a mail server that is away keeps the mail waiting.

Periodic bindings (`interval` seconds) run without a queue, by their `last_run_at`.

One dispatcher runs at a time on a data directory (a lock file), as a service:
`manage.py dispatch_events`, or in `manage.py start`'s process on the embedded default.
"""
import fcntl
import json
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from observers.backoff import backoff
from scripts.events import Event, event_emit
from scripts.files import script_path
from scripts.host import NOT_READ, Batch, ScriptProcess, ScriptRun, calls_read, scripts_run
from scripts.mail import mail_config, mail_connection
from scripts.models import Alert, EventLogEntry, OutgoingMail, QueuedEvent, ScriptBinding

logger = logging.getLogger(__name__)

BATCH = 50  # queued events taken at a time
# The outcomes of a queued event's calls are committed together, at most this many calls or
# this long after the first (so a mail leaves at most that late).
COMMIT_CALLS = 100
COMMIT_SECONDS = 0.5
PURGE_EVERY = timedelta(hours=1)


class DispatcherBusy(RuntimeError):
    """Another dispatcher runs on this data directory."""


class Dispatcher:
    def __init__(self, *, memory_mb: int | None = None):
        self.memory_mb = memory_mb or settings.TARISCOPE_SCRIPT_MEMORY_MB
        self._processes: dict[Path, ScriptProcess] = {}
        self._chunk = 20  # calls taken at once; adapts to the scripts' speed
        self._mail_failures = 0
        self._mail_retry_at = 0.0
        self._purged_at = None
        self._lock = None

    # -- one round ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Dispatch what waits now; return how many events (calls counted one by one) ran."""
        count = 0
        for queued in list(QueuedEvent.objects.select_related("profile")[:BATCH]):
            count += self._dispatch(queued)
        count += self._periodic()
        self.mail_send()
        self._purge()
        return count

    def _dispatch(self, queued: QueuedEvent) -> int:
        bindings = list(ScriptBinding.objects.filter(
            profile_id=queued.profile_id, event=queued.event, enabled=True))
        params = {**queued.params, "event": queued.event, "profile": queued.profile.name,
                  "raised_at": queued.created_at}
        if not bindings:  # unbound (or disabled) since it was queued
            QueuedEvent.objects.filter(pk=queued.pk).delete()
            return 0
        if queued.event != Event.CALL_PROCESSED:
            self._commit(queued, [(binding, params, self._run(binding, params))
                                  for binding in bindings], done=None)
            return 1
        ids = list(params.pop("ids", []))
        if queued.done >= len(ids):  # nothing was left (a row emptied by an earlier run)
            QueuedEvent.objects.filter(pk=queued.pk).delete()
            return 0
        start = queued.done
        while start < len(ids):
            # Up to COMMIT_CALLS calls at once (fewer when the scripts are slow, so that a
            # commit, and its mail, comes about every COMMIT_SECONDS): their rows of v_calls
            # read in one query, each script's events written ahead of it, the scripts side
            # by side.
            chunk = ids[start:start + self._chunk]
            began = time.monotonic()
            rows = calls_read(chunk)
            items = [({**params, "id": call_id}, rows.get(call_id)) for call_id in chunk]
            runs = self._run_many(bindings, items)
            outcomes = [(binding, item[0], runs[b][i]) for i, item in enumerate(items)
                        for b, binding in enumerate(bindings)]
            done = start + len(chunk)
            self._commit(queued, outcomes, done=None if done == len(ids) else done)
            queued.done = start = done
            elapsed = time.monotonic() - began
            self._chunk = max(1, min(COMMIT_CALLS, int(len(chunk) * COMMIT_SECONDS
                                                       / max(elapsed, 1e-6))))
        return len(ids)

    def _commit(self, queued, outcomes, *, done) -> None:
        """Commit what the scripts did for the calls (or the event) just run, with the
        progress: the row's `done`, or its deletion once all is done (`done` None). Until
        this commit nothing of theirs is visible, so calls run again after a crash leave
        no trace twice."""
        with transaction.atomic():
            outcomes_store(outcomes)
            if done is None:
                QueuedEvent.objects.filter(pk=queued.pk).delete()
            else:
                QueuedEvent.objects.filter(pk=queued.pk).update(done=done)
        self.mail_send()

    def _process(self, binding: ScriptBinding) -> ScriptProcess:
        """The process of the binding's script (FileNotFoundError when there is no such
        file). One process per script file, whatever its bindings: a script keeps what it
        learnt (fraud_behaviour.py's profiles, built at `periodic`) for its calls."""
        path = script_path(binding.script)
        process = self._processes.get(path)
        if process is None:
            process = self._processes[path] = ScriptProcess(
                path, memory_mb=self.memory_mb, send_mails=False)
        return process

    def _run(self, binding: ScriptBinding, params: dict) -> ScriptRun:
        return self._run_many([binding], [(params, NOT_READ)])[0][0]

    def _run_many(self, bindings, items) -> list[list[ScriptRun]]:
        """Each binding's script on every item (params, call row), all the scripts at
        once; per binding, the outcomes in the items' order."""
        runs, batches = [], []
        for binding in bindings:
            try:
                batch = Batch(self._process(binding), items, binding.timeout)
            except FileNotFoundError as exc:
                runs.append([ScriptRun(error=str(exc)) for _ in items])
                continue
            batches.append(batch)
            runs.append(batch.runs)
        scripts_run(batches)
        return runs

    def _periodic(self) -> int:
        now = timezone.now()
        ran = 0
        for binding in ScriptBinding.objects.filter(event=Event.PERIODIC, enabled=True,
                                                    interval__gt=0).select_related("profile"):
            if binding.last_run_at and now - binding.last_run_at < timedelta(
                    seconds=binding.interval):
                continue
            params = {"event": Event.PERIODIC.value, "profile": binding.profile.name,
                      "raised_at": now}
            outcome = self._run(binding, params)
            with transaction.atomic():
                outcomes_store([(binding, params, outcome)])
                ScriptBinding.objects.filter(pk=binding.pk).update(last_run_at=now)
            ran += 1
        return ran

    # -- mail -----------------------------------------------------------------------------

    def mail_send(self) -> int:
        """Send the mail that waits, oldest first, over one connection to the mail server;
        stop at the first failure (the server is away) and try again later, with
        back-off."""
        now = timezone.now().timestamp()
        if now < self._mail_retry_at:
            return 0
        waiting = list(OutgoingMail.objects.all()[:100])
        if not waiting:
            return 0
        sent, config = [], mail_config()
        try:
            with mail_connection(config) as connection:
                for mail in waiting:
                    EmailMessage(mail.subject, mail.body, config.sender, list(mail.to),
                                 connection=connection).send()
                    sent.append(mail.pk)
        except Exception as exc:  # smtplib's errors, OSError: the server away or refusing
            self._mail_failures += 1
            self._mail_retry_at = now + backoff(self._mail_failures - 1, 1, 300)
            failed = waiting[len(sent)]
            OutgoingMail.objects.filter(pk=failed.pk).update(
                attempts=failed.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:500])
            logger.warning("mail to %s not sent (%s); trying again later", failed.to, exc)
        else:
            self._mail_failures = 0
        # A mail the server took is never sent again (only a crash before this delete
        # repeats one).
        OutgoingMail.objects.filter(pk__in=sent).delete()
        return len(sent)

    # -- housekeeping ---------------------------------------------------------------------

    def _purge(self) -> None:
        now = timezone.now()
        if self._purged_at and now - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = now
        horizon = now - timedelta(days=settings.TARISCOPE_EVENT_LOG_DAYS)
        EventLogEntry.objects.filter(at__lt=horizon).delete()

    def lock(self) -> None:
        folder = Path(settings.DATA_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / "dispatcher.lock", "a")  # noqa: SIM115 (held while running)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DispatcherBusy("another event dispatcher runs on this data directory") \
                from None
        self._lock = handle

    def close(self) -> None:
        for process in self._processes.values():
            process.close()
        self._processes.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        """Dispatch until `stop` is set; a database that is away is waited for."""
        self.lock()
        priority_lower(settings.TARISCOPE_SCRIPT_NICE)
        failures = 0
        try:
            while not stop.is_set():
                close_old_connections()
                try:
                    busy = self.run_once()
                    failures = 0
                except DatabaseError as exc:
                    delay = backoff(failures, 1, 60)
                    failures += 1
                    logger.warning("dispatcher: database away (%s); again in %.0f s", exc, delay)
                    stop.wait(delay)
                    continue
                if not busy:
                    stop.wait(interval)
        finally:
            self.close()


def priority_lower(nice: int) -> None:
    """Run this thread (the dispatcher: in `manage.py start` it is one thread of the server)
    and the scripts' processes it starts, which inherit it, at `nice`, so that on a busy
    machine collection goes first. Linux keeps a nice value per thread."""
    if nice <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(current, min(nice, 19)))
    except OSError as exc:  # not allowed here (a container's seccomp...): say so, go on
        logger.warning("dispatcher: priority not lowered to nice %s: %s", nice, exc)


def outcomes_store(outcomes: list[tuple[ScriptBinding, dict, ScriptRun]]) -> None:
    """What the scripts did for their events: an event log entry per script and event, its
    alerts (each an `alert` event of its own), its mail; a few INSERTs for a whole batch."""
    entries, mails, alerts = [], [], []
    now = timezone.now()
    for binding, params, outcome in outcomes:
        event = params.get("event", "")
        call_id = params.get("id") if event == Event.CALL_PROCESSED else None
        summary = (f"{binding.script}: " + ("failed" if outcome.error else
                   f"{len(outcome.mail)} mail, {len(outcome.alerts)} alerts"))
        entries.append((now, event, params.get("profile", ""), binding.script, call_id,
                        summary[:500], outcome.log, outcome.error or ""))
        alerts += [(event, Alert(script=binding.script, profile=params.get("profile", ""),
                                 **alert)) for alert in outcome.alerts]
        mails += [OutgoingMail(to=mail["to"], subject=mail["subject"][:500],
                               body=mail["body"], script=binding.script)
                  for mail in outcome.mail]
    _event_log_insert(entries)
    OutgoingMail.objects.bulk_create(mails)
    stored = Alert.objects.bulk_create([alert for _, alert in alerts])
    for (cause, _), alert in zip(alerts, stored, strict=True):
        if cause == Event.ALERT:
            continue  # an alert raised by a script of the alert event: no event again
        event_emit(Event.ALERT, profile=alert.profile, alert_id=alert.pk, level=alert.level,
                   reason=alert.reason, call_id=alert.call_id,
                   subscriber_id=alert.subscriber_id, script=alert.script)


_LOG_FIELDS = ("at", "event", "profile", "script", "call_id", "summary", "log", "error")


def _event_log_insert(entries: list[tuple]) -> None:
    """The event log's rows (in _LOG_FIELDS' order) as multi-row INSERTs: one entry per call
    and script is the dispatcher's largest write, and the ORM's per-value preparation
    (bulk_create) cost more than the database did."""
    if not entries:
        return
    meta = EventLogEntry._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in _LOG_FIELDS)
    row = "(" + ", ".join(["%s"] * len(_LOG_FIELDS)) + ")"
    at_column = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for start in range(0, len(entries), 500):  # SQLite allows 32,766 parameters
            part = entries[start:start + 500]
            values = []
            for at, event, profile, script, call_id, summary, log, error in part:
                values += [at_column(at), event, profile, script, call_id, summary,
                           json.dumps(log), error]
            cursor.execute(f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608
                           + ", ".join([row] * len(part)), values)
