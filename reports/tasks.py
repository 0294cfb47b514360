"""Celery wrappers of the reports' services (STYLE rule 4)."""
from celery import shared_task

from reports.jobs import TASK, report_job_run


@shared_task(name=TASK, acks_late=True)
def report_run_job(job_id: int) -> dict:
    """R11.3: a report over a long period (reports.jobs)."""
    job = report_job_run(job_id=job_id)
    return {"job": job.pk, "state": job.state}
