"""Celery wrappers of tariff services (STYLE rule 4)."""
from celery import shared_task

from tariffs.importers.jobs import job_run


@shared_task(name="tariffs.import_file", acks_late=True)
def tariffs_import_file(job_id: str, source: str, sheet: str | None, mapping: dict,
                        options: dict) -> dict:
    """R5.2 step 5 for a large file: the wizard's import, in a worker. Redelivered after
    success it does not import twice (job_run returns the first outcome). The outcome,
    with every rejected row, stays in the job's folder, not in the result backend."""
    outcome = job_run(job_id=job_id, source=source, sheet=sheet, mapping=mapping, options=options)
    return {"job": job_id, "ok": outcome["ok"]}
