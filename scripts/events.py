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
    # A script raised an alert (host.alert): params alert_id, level, reason, call_id,
    # subscriber_id, script. Alerts raised by the scripts of this event raise none again.
    ALERT = "alert"
    # Ours (R8.1): a limit's warning threshold was crossed: params limit_id, subscriber_id or
    # group_id, used, limit, unit, percent.
    LIMIT_WARNING = "limit_warning"
    # Ours (R8.3-R8.7): the call control dropped (or tried to drop) an active call: params
    # action_id, device, rule, reason, caller, callee, subscriber_id, dropped.
    CALL_DROPPED = "call_dropped"


Subscriber = Callable[[Event, dict], None]
_subscribers: list[Subscriber] = []
_durable: set[int] = set()  # ids of the subscribers whose failure is the caller's


def event_subscribe(subscriber: Subscriber, *, durable: bool = False) -> Callable[[], None]:
    """Call `subscriber(event, params)` for every event; returns a function that unsubscribes.
    A `durable` subscriber (the one that records events in the database) is the event's
    keeper: its failure is raised to the code that emitted the event, after the other
    subscribers ran, so that the change and its event fail together (the piece of calls is
    then tried again) rather than the event being lost. Any other subscriber's failure is
    logged and goes no further."""
    _subscribers.append(subscriber)
    if durable:
        _durable.add(id(subscriber))

    def unsubscribe():
        if subscriber in _subscribers:
            _subscribers.remove(subscriber)
        _durable.discard(id(subscriber))
    return unsubscribe


def event_emit(event: Event, **params) -> None:
    """Raise `event` with `params` (e.g. profile="PBX1", peer="10.0.0.5:5000")."""
    failure = None
    for subscriber in list(_subscribers):
        try:
            subscriber(event, params)
        except Exception as exc:
            if id(subscriber) in _durable:
                failure = failure or exc
            else:
                logger.exception("event subscriber %r failed on %s", subscriber, event)
    if failure is not None:
        raise failure


# Actions that a layer above offers to the layers below without being imported by them:
# the restrictions register "close_subscriber" (R8), which a script's host.close_subscriber
# calls (R9.5).
Action = Callable[..., object]
_actions: dict[str, Action] = {}


def action_register(name: str, action: Action) -> None:
    _actions[name] = action


def action_call(name: str, **arguments):
    """Call the action registered as `name`; LookupError when none is."""
    action = _actions.get(name)
    if action is None:
        raise LookupError(f"no {name!r} here: the module that provides it is not installed")
    return action(**arguments)
