"""R11.3: a report over a long period as a job: created by the page, run by a Celery task
(reports.tasks wraps `report_job_run`; in-process on the embedded default, where there is
no broker), its result kept exactly (decimal strings, ISO dates) to be shown and exported."""
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from reports.catalogue import DATE, MONTH, REPORTS, SLOT, ReportKind
from reports.models import JobState, ReportJob
from reports.selectors import Report
from reports.tables import MONEY, amount_json, key_json

logger = logging.getLogger(__name__)
TASK = "reports.run_job"
DEFAULT_SYNC_DAYS = 92
# A job's result is kept this long, to be shown and downloaded again.
JOB_KEEP = timedelta(days=7)


def sync_days() -> int:
    """The longest period (days) a page computes in its request (REPORTS_SYNC_DAYS)."""
    return int(getattr(settings, "REPORTS_SYNC_DAYS", DEFAULT_SYNC_DAYS))


def report_encode(kind: ReportKind, report: Report) -> dict:
    """A report as JSON values, nothing lost (amounts as exact decimal strings)."""
    def encode(row):
        out = {m: amount_json(row[m]) if m in MONEY else row[m] for m in report.measures}
        out["currency"] = row["currency"]
        if "key" in row:
            out["key"] = key_json(kind, row["key"])
        for extra in ("level", "ref"):
            if row.get(extra) is not None:
                out[extra] = row[extra]
        return out
    return {"measures": list(report.measures), "rows": [encode(r) for r in report.rows],
            "totals": [encode(t) for t in report.totals]}


def report_decode(kind: ReportKind, data: dict) -> Report:
    """The report `report_encode` gave."""
    measures = tuple(data["measures"])

    def decode(row):
        out = dict(row)
        for m in measures:
            if m in MONEY:
                out[m] = Decimal(row[m])
        if "key" in row:
            out["key"] = _key(kind, row["key"])
        return out
    return Report(kind.name, [decode(r) for r in data["rows"]],
                  [decode(t) for t in data["totals"]], measures=measures)


def _key(kind: ReportKind, value):
    if value is None:
        return None
    if kind.key_kind == DATE:
        return date.fromisoformat(value)
    if kind.key_kind == MONTH:
        return date.fromisoformat(f"{value}-01")
    if kind.key_kind == SLOT:
        return datetime.fromisoformat(value)
    return value


def report_job_start(*, kind: ReportKind, params: dict, user) -> ReportJob:
    """R11.3: a report over a long period, run by a worker once this transaction commits
    (in this process on the embedded default). The user's same report still waiting or
    running is the one returned (a page reloaded does not start it twice); jobs older than
    JOB_KEEP are removed."""
    with transaction.atomic():
        ReportJob.objects.filter(created_at__lt=timezone.now() - JOB_KEEP).delete()
        unfinished = ReportJob.objects.filter(
            name=kind.name, params=params, user=user,
            state__in=[JobState.PENDING, JobState.RUNNING]).first()
        if unfinished is not None:
            return unfinished
        job = ReportJob.objects.create(name=kind.name, params=params, user=user)
        transaction.on_commit(lambda: _run_soon(job.pk))
    return job


def _run_soon(job_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        report_job_run(job_id=job_id)
        return
    current_app.send_task(TASK, kwargs={"job_id": job_id})


def report_job_run(*, job_id: int) -> ReportJob:
    """R11.3: run a job's report with its filters (checked again, as the page checks them)
    and keep the result; a failure is kept as the job's error, shown by its page."""
    from reports.forms import ReportFilterForm

    with transaction.atomic():
        job = ReportJob.objects.select_for_update().get(pk=job_id)
        if job.done or job.state == JobState.RUNNING:
            return job  # a redelivered task: that run goes on, or is over
        job.state = JobState.RUNNING
        job.save(update_fields=["state"])
    kind = REPORTS[job.name]
    form = ReportFilterForm(job.params, kind=kind)
    if not form.is_valid():  # a group or subscriber removed since the job was asked for
        job.state = JobState.FAILED
        job.error = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
    else:
        try:
            job.result = report_encode(kind, kind.run(form.filters()))
            job.state = JobState.DONE
        except Exception as exc:
            logger.exception("report job %s failed", job_id)
            job.state, job.error = JobState.FAILED, f"{type(exc).__name__}: {exc}"
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "result", "error", "finished_at"])
    return job
