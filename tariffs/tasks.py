"""Celery wrappers of tariff services (STYLE rule 4)."""
import datetime

from celery import shared_task
from django.conf import settings

from tariffs.importers.jobs import JobBusy, job_fail, job_run, jobs_cleanup


class TariffImportFailed(Exception):
    """A wizard's import failed in a worker; its outcome (with the message the wizard
    shows) is already in the job's folder. Raised so that Celery records the task as
    failed too (result backend, logs, monitoring)."""


# How often a redelivered import looks whether its first run is still going.
BUSY_RETRY_SECONDS = 30


@shared_task(name="tariffs.import_file", acks_late=True, bind=True, max_retries=None)
def tariffs_import_file(self, job_id: str, source: str, sheet: str | None, mapping: dict,
                        options: dict) -> dict:
    """R5.2 step 5 for a large file: the wizard's import, in a worker. Redelivered after
    success it does not import twice (job_run returns the first outcome); redelivered while
    the first run goes on (an import longer than the broker's visibility timeout) it waits
    for it and then returns its outcome. The outcome, with every rejected row, stays in the
    job's folder, not in the result backend."""
    try:
        outcome = job_run(job_id=job_id, source=source, sheet=sheet, mapping=mapping,
                          options=options)
    except JobBusy as exc:
        raise self.retry(exc=exc, countdown=BUSY_RETRY_SECONDS) from exc
    except Exception as exc:
        # Without this the job would stay `running`: the progress page waiting for ever (no
        # result backend to tell), the cleanup keeping it, Cancel refused.
        job_fail(job_id=job_id, source=source,
                 error=f"the import task failed ({type(exc).__name__}: {exc}); nothing was written")
        raise
    if not outcome["ok"]:
        raise TariffImportFailed(f"import {job_id}: {outcome['error']}")
    return {"job": job_id, "ok": True}


@shared_task(name="tariffs.import_cleanup")
def tariffs_import_cleanup() -> dict:
    """R5.2: every hour (CELERY_BEAT_SCHEDULE), the uploads and results of wizards left
    for more than TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS are removed; running imports are kept."""
    return jobs_cleanup(
        older_than=datetime.timedelta(hours=settings.TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS))
