"""R8.2, R8.11: the PBX changes (restrictions.PbxChange) made through each device's connector.

A change is tried as soon as it is planned, then again with back-off (2 s, 4 s ... 5 min)
while the PBX cannot be reached, answers 5xx or refuses a token; it is marked done only
once the PBX confirmed it, in the same transaction as what the connector reported, and a
restart finds it where it was. A close records what the connector changed
(`previous_state`), which its reopen restores; a reopen whose extension an administrator
changed meanwhile is a conflict, reported and left as it is. A refusal that retrying
cannot fix (an unknown extension) fails the change, with the PBX's answer.

The connector of each device is kept between runs (it holds the PBX's token: 3CX allows
one at a time)."""
import json
import logging
import threading
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from observers.backoff import backoff
from restrictions.connectors.base import PbxRefused, PbxUnavailable, connector_for
from restrictions.models import PbxChange, PbxControl

logger = logging.getLogger(__name__)

RETRY_MIN_SECONDS, RETRY_MAX_SECONDS = 2, 300
_connectors: dict[int, tuple[str, object]] = {}  # device id -> (its config as JSON, connector)
_connectors_lock = threading.Lock()
_run_lock = threading.Lock()  # one run at a time in a process (the loop and a task)


def connector_of(control: PbxControl):
    """The device's connector, made again when its configuration changed."""
    key = json.dumps(control.connector, sort_keys=True)
    with _connectors_lock:
        known = _connectors.get(control.device_id)
        if known is None or known[0] != key:
            known = _connectors[control.device_id] = (key, connector_for(control.connector))
        return known[1]


def pbx_changes_run(*, now=None, batch: int = 200) -> dict:
    """Make the PBX changes that are due, oldest first; one extension's changes in their
    order (a later one waits while an earlier one is pending). Returns counts."""
    summary = {"done": 0, "retry": 0, "failed": 0, "conflict": 0, "busy": 0}
    if not _run_lock.acquire(blocking=False):
        return summary  # another thread of this process is at it
    try:
        now = now or timezone.now()
        blocked: set[tuple[int, str]] = set()
        pending = (PbxChange.objects.filter(status=PbxChange.Status.PENDING)
                   .select_related("device").order_by("pk")[:batch])
        for change in pending:
            key = (change.device_id, change.extension)
            if key in blocked:
                continue
            if change.next_try_at and change.next_try_at > now:
                blocked.add(key)
                continue
            outcome = _make(change, now)
            summary[outcome] += 1
            if outcome in ("retry", "busy"):
                blocked.add(key)
        return summary
    finally:
        _run_lock.release()


def pbx_changes_pending() -> int:
    return PbxChange.objects.filter(status=PbxChange.Status.PENDING).count()


def _make(change: PbxChange, now) -> str:
    control = PbxControl.objects.filter(device_id=change.device_id).first()
    if connection.vendor != "postgresql":
        # SQLite (the embedded default: one process, whose runs _run_lock keeps apart):
        # no transaction is held while the PBX is asked, which would hold the database's
        # only write lock, and with it collection, for as long.
        change.refresh_from_db()
        if change.status != PbxChange.Status.PENDING:
            return "busy"
        return _planned(change, control, now) or _attempt(change, control, now)
    for step in (_planned, _attempt):
        with transaction.atomic():
            # Locked while the PBX is asked: a second runner (another worker) passes it by.
            locked = (PbxChange.objects.select_for_update(skip_locked=True)
                      .filter(pk=change.pk, status=PbxChange.Status.PENDING).first())
            if locked is None:
                return "busy"
            outcome = step(locked, control, now)
        if outcome:
            return outcome
    return "busy"  # not reached: _attempt always has an outcome


def _planned(change: PbxChange, control: PbxControl | None, now) -> str | None:
    """Before a change is first tried, what it will write is kept (committed before the
    PBX is changed). A close asks the PBX what closing will change: retried after a crash
    that lost the PBX's answer, it then records the extension's state before the first
    attempt, not the closed state it finds. A reopen keeps the state it restores. Either
    way a change with a kept state may have reached the PBX, and is no longer cancelled
    (pbx_changes_plan). None when the change can go on."""
    if change.previous_state is not None:
        return None
    if change.action == PbxChange.Action.REOPEN:
        closed = _closed_by(change)
        if closed is not None:
            change.previous_state = closed.previous_state
            change.save(update_fields=["previous_state"])
        return None
    return _asked(change, control, now, lambda connector: _keep_plan(change, connector))


def _closed_by(change: PbxChange) -> PbxChange | None:
    """The close that a reopen undoes: the last one made on the PBX before it."""
    return (PbxChange.objects.filter(
        device_id=change.device_id, extension=change.extension,
        action=PbxChange.Action.CLOSE, pk__lt=change.pk)
        .filter(Q(status=PbxChange.Status.DONE)).order_by("-pk").first())


def _keep_plan(change: PbxChange, connector) -> None:
    change.previous_state = connector.close_plan(change.extension)
    change.save(update_fields=["previous_state"])


def _attempt(change: PbxChange, control: PbxControl | None, now) -> str:
    return _asked(change, control, now,
                  lambda connector: _done(change, _change(change, connector)))


def _change(change: PbxChange, connector) -> str:
    """Make the change on the PBX; "done" or "conflict", with the answer on `change`."""
    if change.action == PbxChange.Action.CLOSE:
        previous = connector.close(change.extension, plan=change.previous_state)
        change.previous_state = previous
        change.answer = f"closed: {_short(previous)}"
        return "done"
    if change.previous_state is None:
        change.answer = "nothing to restore: the extension was never closed here"
        return "done"
    result = connector.reopen(change.extension, change.previous_state)
    change.answer = _reopen_text(result)
    return "done" if result.ok else "conflict"


def _done(change: PbxChange, outcome: str) -> str:
    change.status = (PbxChange.Status.CONFLICT if outcome == "conflict"
                     else PbxChange.Status.DONE)
    change.attempts += 1
    change.done_at = timezone.now()
    change.last_error = ""
    change.save()
    return outcome


def _asked(change: PbxChange, control: PbxControl | None, now, ask) -> str | None:
    """`ask(connector)` with the device's connector; a PBX away is retried with back-off,
    a refusal fails the change. Returns ask's outcome, "retry" or "failed"."""
    if control is None or not control.connector:
        return _failed(change, "the device has no connector any more")
    try:
        outcome = ask(connector_of(control))
    except PbxUnavailable as exc:
        change.attempts += 1
        delay = backoff(change.attempts - 1, RETRY_MIN_SECONDS, RETRY_MAX_SECONDS)
        change.next_try_at = now + timedelta(seconds=delay)
        change.last_error = str(exc)[:1000]
        change.save(update_fields=["attempts", "next_try_at", "last_error"])
        _contact(control, error=str(exc))
        logger.warning("PBX %s: %s %s not made (%s); trying again in %s s",
                       change.device.name, change.action, change.extension, exc, delay)
        return "retry"
    except PbxRefused as exc:
        change.attempts += 1
        _contact(control, error=str(exc))
        return _failed(change, str(exc))
    _contact(control)
    return outcome


def _failed(change: PbxChange, error: str) -> str:
    change.status = PbxChange.Status.FAILED
    change.last_error = error[:1000]
    change.done_at = timezone.now()
    change.save()
    logger.error("PBX %s: %s %s refused: %s", change.device.name, change.action,
                 change.extension, error)
    return "failed"


def _contact(control: PbxControl | None, *, error: str = "") -> None:
    if control is None:
        return
    now = timezone.now()
    if error:
        PbxControl.objects.filter(pk=control.pk).update(last_error=error[:1000],
                                                        last_error_at=now)
    else:
        PbxControl.objects.filter(pk=control.pk).update(last_contact_at=now, last_error="")


def _reopen_text(result) -> str:
    text = f"{result.status}"
    if result.differences:
        text += ": changed on the PBX meanwhile, left as it is: " + "; ".join(
            f"{d.field} is {d.actual!r}, closing had set {d.expected!r}"
            for d in result.differences)
    if result.message:
        text += f" ({result.message})"
    return text[:1000]


def _short(state) -> str:
    return json.dumps(state, sort_keys=True, default=str)[:900]
