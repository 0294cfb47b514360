"""Writes of observer profiles that are not collection itself: the remote observer's
credential and its batches (R2.6), starting and stopping (R2.5), the service state."""
import hashlib
import secrets
import time

from django.db import IntegrityError, OperationalError, transaction

from observers.delivery import profile_deliver
from observers.logs import STATUS, profile_logger
from observers.models import ObserverProfile, RemoteBatch


def profile_issue_token(*, profile: ObserverProfile) -> str:
    """R2.6: a new credential for the profile's remote observer, shown once; the previous one
    stops working. Only its SHA-256 is kept."""
    token = f"obs_{secrets.token_urlsafe(32)}"
    ObserverProfile.objects.filter(pk=profile.pk).update(remote_token_hash=token_hash(token))
    profile_logger(profile).log(STATUS, "remote observer token issued")
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def remote_batch_receive(*, profile: ObserverProfile, batch_id: str, data: bytes,
                         source_name: str) -> tuple[bool, dict]:
    """R2.6: a batch from a remote observer: (True, summary) when new; (False, summary of the
    first delivery) when this batch was received before (its answer was lost)."""
    known = RemoteBatch.objects.filter(profile=profile, batch_id=batch_id).first()
    if known is not None:
        return False, known.summary
    outcome = profile_deliver(profile=profile, data=data, source_name=source_name,
                              keep_result=False)
    summary = {"bytes": len(data)}
    if outcome.ready() and outcome.successful():
        summary.update(outcome.get())  # processed in-process (no broker)
    try:
        with transaction.atomic():
            RemoteBatch.objects.create(profile=profile, batch_id=batch_id, size=len(data),
                                       summary=summary)
    except IntegrityError:  # the same batch, sent twice at once: the other copy won
        return False, summary
    return True, summary


def profile_set_enabled(*, profile: ObserverProfile, enabled: bool) -> ObserverProfile:
    """R2.5: start (True) or stop (False) a local profile; the supervisor follows within seconds."""
    ObserverProfile.objects.filter(pk=profile.pk).update(enabled=enabled)
    profile.enabled = enabled
    profile_logger(profile).log(STATUS, "observer %s from the UI",
                                "started" if enabled else "stopped")
    return profile


def profile_set_state(*, profile: ObserverProfile, state: str) -> None:
    """R2.5: record whether the profile's collector is running. SQLite (the embedded
    default) may refuse a write for a moment while another thread writes: try again."""
    for attempt in range(10):
        try:
            ObserverProfile.objects.filter(pk=profile.pk).update(state=state)
            break
        except OperationalError:
            if attempt == 9:
                raise
            time.sleep(0.1 * (attempt + 1))
    profile.state = state
    profile_logger(profile).log(STATUS, "observer %s", state)
