"""R4.5: rate stored calls again with the current tariffs, in resumable batches.

A re-rating run is a *job*: its parameters, the last call id done and the running totals,
kept as JSON in `DATA_DIR/rerate/<job id>.json` (there is no table for it). Calls are taken
in id order, `batch_size` at a time (keyset pagination: id > last id done), and each batch
is rated and written in one transaction, so a job killed at any point resumes after its
last committed batch (`calls_rerate(job=...)`, `manage.py rerate --resume ID`, or the
`billing.rerate_batch` task) and ends with the totals of an uninterrupted run.

With Celery workers on other hosts, DATA_DIR must be shared with them, as it already is
for the raw archive the collection tasks read.
"""
import json
import os
import re
import secrets
import zoneinfo
from bisect import bisect_right
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.accounts import charges_recalculate_for
from billing.calls import CallBuilder
from billing.models import Call, Device
from billing.usage import usage_rebuild
from observers.parsers.base import CallRecord
from tariffs.models import Operator
from tariffs.rating import quantize_money

try:  # POSIX: two processes never work on the same job at once
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, run one process per job
    fcntl = None

# What rating decides about a call: the only columns re-rating may change (R4.5).
RATING_FIELDS = ("subscriber", "normalized", "auth_code", "route", "operator", "plan", "code",
                 "tariff", "billable_seconds", "cost", "currency", "call_type", "rating_note",
                 "direction")
_ATTNAMES = {name: Call._meta.get_field(name).attname for name in RATING_FIELDS}
# Rows per UPDATE statement: a bulk_update is one CASE per column over its rows, which
# grows quadratically on PostgreSQL; SQLite caps it lower still (999 parameters).
_UPDATE_CHUNK = 500
_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
_ZERO = Decimal(0)


class RerateJobError(Exception):
    """A job that cannot be found or run (unknown id, already running elsewhere)."""


@dataclass
class RerateResult:
    """R4.5: what a re-rating did. `difference`: new minus old cost per currency."""

    job: str
    examined: int = 0
    changed: int = 0
    difference: dict[str, Decimal] = field(default_factory=dict)
    newly_priced: int = 0
    unpriced: int = 0
    done: bool = False

    def as_dict(self) -> dict:
        """The `rerate` command's JSON: amounts as decimal strings in minor units."""
        return {
            "job": self.job, "examined": self.examined, "changed": self.changed,
            "difference": {cur: f"{quantize_money(amount, cur or 'XXX'):f}"
                           for cur, amount in sorted(self.difference.items())},
            "newly_priced": self.newly_priced, "unpriced": self.unpriced,
        }


@dataclass
class RerateJob:
    """A re-rating job's parameters and progress, persisted as JSON (see the module doc)."""

    id: str
    date_from: date | None = None
    date_to: date | None = None
    device_id: int | None = None
    operator_id: int | None = None
    has_ids: bool = False  # the ids themselves are in <id>.ids.json, written once
    batch_size: int = 2000
    last_id: int = 0
    batches: int = 0
    examined: int = 0
    changed: int = 0
    difference: dict[str, str] = field(default_factory=dict)
    newly_priced: int = 0
    unpriced: int = 0
    done: bool = False
    # A batch written in the database but maybe not committed yet (see _settle_pending).
    pending: dict | None = None
    created: str = ""
    updated: str = ""

    # --- persistence --------------------------------------------------------------------
    @staticmethod
    def directory() -> Path:
        return Path(settings.DATA_DIR) / "rerate"

    @property
    def path(self) -> Path:
        return self.directory() / f"{self.id}.json"

    @property
    def ids_path(self) -> Path:
        return self.directory() / f"{self.id}.ids.json"

    def save(self) -> None:
        """Replace the file atomically: a kill mid-write leaves the previous state."""
        self.updated = timezone.now().isoformat()
        data = asdict(self)
        for key in ("date_from", "date_to"):
            data[key] = data[key].isoformat() if data[key] else None
        _write_atomically(self.path, json.dumps(data, indent=1))

    @classmethod
    def load(cls, job_id: str) -> "RerateJob":
        if not _JOB_ID.match(job_id or ""):
            raise RerateJobError(f"{job_id!r} is not a re-rating job id")
        path = cls.directory() / f"{job_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RerateJobError(f"no re-rating job {job_id} (looked for {path})") from None
        for key in ("date_from", "date_to"):
            data[key] = date.fromisoformat(data[key]) if data[key] else None
        return cls(**data)

    def load_ids(self) -> list[int]:
        return json.loads(self.ids_path.read_text(encoding="utf-8")) if self.has_ids else []

    # --- totals -------------------------------------------------------------------------
    def result(self) -> RerateResult:
        return RerateResult(
            job=self.id, examined=self.examined, changed=self.changed,
            difference={cur: Decimal(amount) for cur, amount in self.difference.items()},
            newly_priced=self.newly_priced, unpriced=self.unpriced, done=self.done)

    def add(self, batch: dict) -> None:
        """Count a committed batch (a `pending` record) and move past it."""
        self.last_id = batch["last_id"]
        self.done = batch["done"]
        self.batches += 1
        for key in ("examined", "changed", "newly_priced", "unpriced"):
            setattr(self, key, getattr(self, key) + batch[key])
        for cur, amount in batch["difference"].items():
            self.difference[cur] = str(Decimal(self.difference.get(cur, "0")) + Decimal(amount))


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


@contextmanager
def _job_lock(job: RerateJob):
    """Hold the job for one batch; a second process (a redelivered task, a resume typed
    while a worker runs it) is refused rather than counting the same batch twice."""
    if fcntl is None:
        yield
        return
    lock_path = job.directory() / f"{job.id}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RerateJobError(f"re-rating job {job.id} is running in another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rerate_job_create(*, date_from: date | None = None, date_to: date | None = None,
                      device: Device | None = None, operator: Operator | None = None,
                      ids: list[int] | None = None, batch_size: int = 2000) -> RerateJob:
    """R4.5: a new re-rating job (nothing rated yet), saved to its file."""
    if (date_from is None) != (date_to is None):
        raise ValueError("give both date_from and date_to, or neither")
    if date_from is None and ids is None:
        raise ValueError("give a period (date_from, date_to) or the ids of the calls")
    if date_from is not None and date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = timezone.now().isoformat()
    job = RerateJob(id=secrets.token_hex(6), date_from=date_from, date_to=date_to,
                    device_id=device.pk if device else None,
                    operator_id=operator.pk if operator else None,
                    has_ids=ids is not None, batch_size=batch_size, created=now)
    if ids is not None:
        _write_atomically(job.ids_path, json.dumps(sorted(set(ids))))
        job.done = not ids
    job.save()
    return job


def _period_bounds(job: RerateJob) -> tuple[datetime, datetime]:
    """Whole days in the server's TIME_ZONE, both ends inclusive."""
    zone = timezone.get_current_timezone()
    return (datetime.combine(job.date_from, time.min, zone),
            datetime.combine(job.date_to + timedelta(days=1), time.min, zone))


def _next_batch(job: RerateJob) -> tuple[list[Call], int, bool]:
    """(calls, last id covered, whether this is the last batch) after `job.last_id`."""
    calls = Call.objects.select_related("device")
    if job.date_from is not None:
        start, end = _period_bounds(job)
        calls = calls.filter(start__gte=start, start__lt=end)
    if job.device_id is not None:
        calls = calls.filter(device_id=job.device_id)
    if job.operator_id is not None:
        calls = calls.filter(operator_id=job.operator_id)
    if job.has_ids:
        ids = job.load_ids()  # sorted
        start = bisect_right(ids, job.last_id)
        chunk = ids[start:start + job.batch_size]
        if not chunk:
            return [], job.last_id, True
        # Calls deleted since the selection are simply not found; move past their ids.
        return (list(calls.filter(id__in=chunk).order_by("id")), chunk[-1],
                start + len(chunk) >= len(ids))
    batch = list(calls.filter(id__gt=job.last_id).order_by("id")[:job.batch_size])
    last_id = batch[-1].pk if batch else job.last_id
    return batch, last_id, len(batch) < job.batch_size


def _record(call: Call, builder: CallBuilder) -> CallRecord:
    """The record the call was built from, as far as the call keeps it. The start is naive
    local time with its `fold` kept, so the repeated hour of a DST change maps back to the
    same instant."""
    return CallRecord(
        source_key=call.source_key,
        start=call.start.astimezone(builder.zone).replace(tzinfo=None),
        duration=call.duration, direction=call.direction, extension=call.extension,
        dialled=call.dialled, trunk=call.trunk, answered=call.answered)


def _signature(call: Call) -> list[str]:
    """The rating columns of a call as comparable text (4 or 2 decimal places alike)."""
    out = []
    for attname in _ATTNAMES.values():
        value = getattr(call, attname)
        out.append(f"{value.normalize():f}" if isinstance(value, Decimal) else str(value))
    return out


def _rate_batch(calls: list[Call]) -> tuple[list[Call], set[str], dict]:
    """Rate `calls` again in memory: (changed calls, changed columns, batch totals)."""
    builders: dict[int, CallBuilder] = {}
    changed: list[Call] = []
    columns: set[str] = set()
    difference: dict[str, Decimal] = defaultdict(Decimal)
    newly_priced = unpriced = 0
    for call in calls:
        builder = builders.get(call.device_id)
        if builder is None:
            builder = builders[call.device_id] = CallBuilder(call.device)
        fresh, _ = builder.build_explained(_record(call, builder))
        differs = [name for name, attname in _ATTNAMES.items()
                   if getattr(call, attname) != getattr(fresh, attname)]
        if not differs:
            continue
        old_cost, old_currency = call.cost, call.currency
        new_cost, new_currency = fresh.cost, fresh.currency
        if old_cost != new_cost or (old_currency != new_currency and new_cost is not None):
            # A missing cost counts as 0; each amount counts in its own currency.
            if old_cost is not None:
                difference[old_currency] -= old_cost
            if new_cost is not None:
                difference[new_currency] += new_cost
        if old_cost is None and new_cost is not None:
            newly_priced += 1
        elif old_cost is not None and new_cost is None:
            unpriced += 1
        for name in differs:
            attname = _ATTNAMES[name]
            setattr(call, attname, getattr(fresh, attname))
        columns.update(differs)
        changed.append(call)
    totals = {"examined": len(calls), "changed": len(changed),
              "difference": {cur: str(amount) for cur, amount in difference.items()},
              "newly_priced": newly_priced, "unpriced": unpriced}
    return changed, columns, totals


def _settle_pending(job: RerateJob) -> None:
    """A batch is recorded as `pending` in the job file inside its transaction, and counted
    once the transaction has committed. A process killed between the two leaves it
    pending: if its first changed call holds the new values, the commit happened and the
    batch is counted; otherwise it rolled back and the batch is simply done again.
    (Counting it from a second pass would find nothing changed and lose its totals.)"""
    pending = job.pending
    if pending is None:
        return
    probe = pending.get("probe")
    committed = True
    if probe is not None:
        call = Call.objects.filter(pk=probe["id"]).first()
        committed = call is not None and _signature(call) == probe["values"]
    job.pending = None
    if committed:
        job.add(pending)
    job.save()


def rerate_job_step(*, job_id: str) -> RerateJob:
    """R4.5: rate the next batch of a job again, in one transaction; returns the job with
    its totals so far (`done` once no call is left)."""
    job = RerateJob.load(job_id)
    with _job_lock(job):
        job = RerateJob.load(job_id)  # as the previous holder of the lock left it
        _settle_pending(job)
        if job.done:
            return job
        with transaction.atomic():
            calls, last_id, last = _next_batch(job)
            held_by = {call.pk: call.subscriber_id for call in calls}
            changed, columns, totals = _rate_batch(calls)
            if changed:
                Call.objects.bulk_update(changed, sorted(columns), batch_size=_UPDATE_CHUNK)
                # R7.1: charges follow re-rating, in the same transaction as the calls;
                # a call that moved to another subscriber corrects both accounts.
                days = [(call, call.start.astimezone(zoneinfo.ZoneInfo(call.device.timezone))
                         .date()) for call in changed]
                pairs = [*((held_by[call.pk], day) for call, day in days),
                         *((call.subscriber_id, day) for call, day in days)]
                charges_recalculate_for(pairs=pairs)
                usage_rebuild(pairs=pairs)  # R8.1: the limits' running totals too
            job.pending = {**totals, "last_id": last_id, "done": last, "probe": (
                {"id": changed[0].pk, "values": _signature(changed[0])} if changed else None)}
            job.save()
        pending, job.pending = job.pending, None
        job.add(pending)
        job.save()
    return job


def calls_rerate(*, date_from: date | None = None, date_to: date | None = None,
                 device: Device | None = None, operator: Operator | None = None,
                 ids: list[int] | None = None, batch_size: int = 2000,
                 job: RerateJob | None = None, max_batches: int | None = None) -> RerateResult:
    """R4.5: rate the calls of a period (whole days, server time zone, both inclusive) again
    with the current tariffs; only calls whose rating changes are written.

    `device`, `operator` (the calls' operator before re-rating) and `ids` narrow the calls.
    `job`: resume that job (its own parameters apply; give no others). `max_batches`: stop
    after that many batches (the job can be resumed)."""
    if job is None:
        job = rerate_job_create(date_from=date_from, date_to=date_to, device=device,
                                operator=operator, ids=ids, batch_size=batch_size)
    elif any(v is not None for v in (date_from, date_to, device, operator, ids)):
        raise ValueError("a resumed job keeps its own parameters; give only the job")
    batches = 0
    while max_batches is None or batches < max_batches:
        job = rerate_job_step(job_id=job.id)
        if job.done:
            break
        batches += 1
    return job.result()


__all__ = ["RATING_FIELDS", "RerateJob", "RerateJobError", "RerateResult", "calls_rerate",
           "rerate_job_create", "rerate_job_step"]
