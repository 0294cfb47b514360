"""Celery wrappers of billing services (STYLE rule 4)."""
from celery import shared_task
from django.utils import timezone

from billing.accounts import recurring_charges_create
from billing.rerating import RerateJobError, rerate_job_step


@shared_task(name="billing.rerate_batch", acks_late=True)
def rerate_batch(job_id: str) -> dict:
    """R4.5: one batch of a re-rating job, then the next batch as a new task."""
    while True:
        try:
            job = rerate_job_step(job_id=job_id)
        except RerateJobError as exc:
            # Already being run by another worker (a redelivered task): that one goes on.
            return {"job": job_id, "error": str(exc)}
        if job.done:
            return job.result().as_dict()
        if not rerate_batch.app.conf.task_always_eager:
            rerate_batch.delay(job_id)
            return {"job": job_id, "last_id": job.last_id, "batches": job.batches}
        # In-process (the embedded default) a re-enqueue would be a recursion one level
        # deeper per batch; a loop does the same work without the depth limit.


@shared_task(name="billing.charge_recurring")
def charge_recurring() -> int:
    """R7.1: on the first of every month (CELERY_BEAT_SCHEDULE), the month's subscription
    fees. Idempotent, so a repeated run does no harm."""
    return recurring_charges_create(month=timezone.localdate().replace(day=1))
