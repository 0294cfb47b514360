"""R9.2: events become durable here. Every event raised (scripts.events.event_emit) for a
profile that has a script bound to it is written as a QueuedEvent, in the transaction of
whatever raised it: the calls of a piece and their `call_processed` event commit together.
Events of profiles without an enabled binding for them are not written at all."""
import logging

from django.db import DatabaseError, transaction

from observers.models import ObserverProfile
from scripts.events import Event, event_subscribe
from scripts.models import QueuedEvent, ScriptBinding

logger = logging.getLogger(__name__)


def _profile_of(params: dict) -> ObserverProfile | None:
    if params.get("profile"):
        return ObserverProfile.objects.filter(name=params["profile"]).first()
    if params.get("profile_id"):
        return ObserverProfile.objects.filter(pk=params["profile_id"]).first()
    return None


def event_record(event: Event, params: dict) -> QueuedEvent | None:
    """Queue `event` for the scripts bound to it; None when no enabled binding wants it."""
    if event == Event.PERIODIC:
        return None  # the dispatcher runs periodic bindings by their interval
    profile = _profile_of(params)
    if profile is None or not ScriptBinding.objects.filter(
            profile=profile, event=str(event), enabled=True).exists():
        return None
    values = {key: value if isinstance(value, int | float | str | bool | list | type(None))
              else str(value) for key, value in params.items()}
    values["profile"] = profile.name
    try:
        # A savepoint: a failure here must not leave the caller's transaction broken.
        with transaction.atomic():
            return QueuedEvent.objects.create(profile=profile, event=str(event), params=values)
    except DatabaseError:
        logger.error("event %s of %s could not be recorded", event, profile.name)
        raise


def events_recording_start() -> None:
    """Record events from now on (scripts.apps, in every process of the project)."""
    event_subscribe(_subscriber, durable=True)


# Events raised inside the transaction of their change: they fail with it (and the change is
# tried again). The others are raised by collectors and workers about the world outside
# (a PBX connected, the database away: then nothing can be recorded anyway), and a failure
# to record them is logged and goes no further.
TRANSACTIONAL = frozenset({Event.CALL_PROCESSED, Event.SUBSCRIBER_CLASS_CHANGED,
                           Event.GROUP_CLASS_CHANGED, Event.ALERT})


def _subscriber(event, params):
    try:
        event_record(event, params)
    except Exception as exc:
        if event in TRANSACTIONAL:
            raise
        logger.warning("event %s (%s) not recorded: %s", event,
                       params.get("profile") or params.get("profile_id"), exc)
