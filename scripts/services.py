"""R9.2: events become durable here. Every event raised (scripts.events.event_emit) for a
profile that has a script bound to it is written as a QueuedEvent, in the transaction of
whatever raised it: the calls of a piece and their `call_processed` event commit together.
Events of profiles without an enabled binding for them are not written at all."""
import logging
import time

from django.db import DatabaseError, transaction
from django.db.models.signals import post_delete, post_save

from observers.models import ObserverProfile
from scripts.events import Event, event_subscribe
from scripts.models import QueuedEvent, ScriptBinding

logger = logging.getLogger(__name__)


# Which profiles have which events bound, read at most every BINDINGS_SECONDS per process
# (and again at once when this process saves a binding or a profile): an event of a profile
# with nothing bound to it costs no query, so that a piece of calls of such a profile, or a
# storm of alerts nobody listens to, writes nothing. A binding saved by another process
# (the page, apply_config) is seen within that time.
BINDINGS_SECONDS = 2.0
_bindings: tuple[float, dict[str, int], frozenset[tuple[int, str]]] | None = None


def bindings_forget(**kwargs) -> None:
    global _bindings
    _bindings = None


def _bound(params: dict, event: str) -> int | None:
    """The id of the event's profile when an enabled binding (as last read) wants it."""
    global _bindings
    now = time.monotonic()
    if _bindings is None or now - _bindings[0] >= BINDINGS_SECONDS:
        names = dict(ObserverProfile.objects.values_list("name", "pk"))
        pairs = frozenset(ScriptBinding.objects.filter(enabled=True).values_list(
            "profile_id", "event"))
        _bindings = (now, names, pairs)
    _, names, pairs = _bindings
    profile_id = names.get(params["profile"]) if params.get("profile") else None
    if profile_id is None and params.get("profile_id"):
        try:
            profile_id = int(params["profile_id"])
        except (TypeError, ValueError):
            return None
    return profile_id if (profile_id, event) in pairs else None


def event_record(event: Event, params: dict) -> QueuedEvent | None:
    """Queue `event` for the scripts bound to it; None when no enabled binding wants it."""
    if event == Event.PERIODIC:
        return None  # the dispatcher runs periodic bindings by their interval
    profile_id = _bound(params, str(event))
    if profile_id is None:
        return None
    # Looked at again in the database: the read above may be a few seconds old.
    profile = ObserverProfile.objects.filter(pk=profile_id, script_bindings__event=str(event),
                                             script_bindings__enabled=True).first()
    if profile is None:
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
    for model in (ScriptBinding, ObserverProfile):
        post_save.connect(bindings_forget, sender=model, dispatch_uid=f"bindings.{model.__name__}")
        post_delete.connect(bindings_forget, sender=model,
                            dispatch_uid=f"bindings.{model.__name__}.deleted")


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
