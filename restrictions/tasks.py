"""Celery wrappers of the restrictions' services (STYLE rule 4)."""
from celery import shared_task

from restrictions.pbx import pbx_changes_run
from restrictions.pbxdata import pbx_data_due
from restrictions.services import limits_check, limits_enforce, limits_reopen_due
from restrictions.sync import pbx_sync_due


@shared_task(name="restrictions.limits_check", acks_late=True)
def limits_check_task(subscriber_ids: list[int]) -> dict:
    """R8.1: the limits of subscribers whose usage just grew (after their calls committed)."""
    return limits_check(subscriber_ids=subscriber_ids)


@shared_task(name="restrictions.limits_enforce")
def limits_enforce_task() -> dict:
    """Every limit, now: the safety net behind the checks after each stored batch."""
    return limits_enforce()


@shared_task(name="restrictions.limits_reopen_due")
def limits_reopen_due_task() -> dict:
    """R8.2: reopen what limits closed in months that have ended in their zone."""
    return limits_reopen_due()


@shared_task(name="restrictions.pbx_changes_run")
def pbx_changes_run_task() -> dict:
    """R8.2: make the PBX changes that are due (new ones, and retries)."""
    return pbx_changes_run()


@shared_task(name="restrictions.pbx_sync_due")
def pbx_sync_due_task() -> dict:
    """R8.10: sync the extensions of the PBXs whose sync_minutes have passed."""
    return pbx_sync_due()


@shared_task(name="restrictions.pbx_data_due")
def pbx_data_due_task() -> dict:
    """R8.8, R8.9: import the recent queue calls and call legs of the PBXs that offer them."""
    return pbx_data_due()
