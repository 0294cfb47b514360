"""R9.2: the events that scripts can be bound to, and the one small API that raises them.

Collectors call `event_emit(...)`; the script host (R9) subscribes with `event_subscribe`.
A failing subscriber is logged and never stops the caller.
"""
import logging
from collections.abc import Callable
from enum import StrEnum

logger = logging.getLogger(__name__)


class Event(StrEnum):
    """R9.2's events."""

    SOURCE_CONNECTED = "source_connected"
    SOURCE_DISCONNECTED = "source_disconnected"
    SUBSCRIBER_CLASS_CHANGED = "subscriber_class_changed"
    GROUP_CLASS_CHANGED = "group_class_changed"
    PERIODIC = "periodic"
    CALL_PROCESSED = "call_processed"
    DATABASE_ERROR = "database_error"
    # Ours: a piece of received data could not be processed for good (R2.4); its bytes are
    # in the raw archive, for `reprocess` once the cause is fixed.
    PROCESSING_FAILED = "processing_failed"


Subscriber = Callable[[Event, dict], None]
_subscribers: list[Subscriber] = []


def event_subscribe(subscriber: Subscriber) -> Callable[[], None]:
    """Call `subscriber(event, params)` for every event; returns a function that unsubscribes."""
    _subscribers.append(subscriber)
    return lambda: _subscribers.remove(subscriber) if subscriber in _subscribers else None


def event_emit(event: Event, **params) -> None:
    """Raise `event` with `params` (e.g. profile="PBX1", peer="10.0.0.5:5000")."""
    for subscriber in list(_subscribers):
        try:
            subscriber(event, params)
        except Exception:
            logger.exception("event subscriber %r failed on %s", subscriber, event)
