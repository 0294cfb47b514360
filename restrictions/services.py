"""R8.1, R8.2: limits checked against the month's usage, closures (the class "closed" of a
subscriber, or of a group and its subtree) made and reopened, each change of class kept
in the history, raised as an event and turned into PbxChanges, which restrictions.pbx then
makes on the PBXs.

A subscriber is closed while any closure in force covers it: its own, or one of its group
or of a group above. The PBX follows that: an extension is closed when its subscriber
becomes closed, and reopened when nothing covers it any more, whatever the order in which
closures are made and reopened."""
import logging
from datetime import date, datetime
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import PhoneNumber, Subscriber, SubscriberGroup
from observers.models import ObserverProfile
from restrictions.models import Cause, ClassChange, Closure, Limit, LimitMonth, PbxChange
from restrictions.pbx import pbx_changes_run
from restrictions.selectors import (
    closed_subscribers,
    extensions_of,
    group_subtree,
    group_tree,
    limit_usage,
    limits_of_subscribers,
    month_of,
    subscribers_in_groups,
    zone_of_group,
    zone_of_subscriber,
)
from scripts.events import Event, action_register, event_emit, event_subscribe
from scripts.mail import mail_config
from scripts.models import OutgoingMail

logger = logging.getLogger(__name__)

CLOSED, OPEN = "closed", "open"


# -- limits ------------------------------------------------------------------------------

def _target_zone(limit: Limit):
    if limit.subscriber_id is not None:
        return zone_of_subscriber(limit.subscriber_id)
    return zone_of_group(limit.group_id)


def _amount(limit: Limit) -> Decimal | int:
    return limit.money if limit.money is not None else limit.seconds


def limit_text(limit: Limit, used) -> str:
    """`used` of `limit` in words: "412.50 of 500.00 UAH (82 %)"."""
    amount = _amount(limit)
    percent = int(Decimal(used) * 100 / Decimal(amount)) if amount else 100
    if limit.money is not None:
        return f"{used:.2f} of {limit.money:.2f} {limit.currency} ({percent} %)"
    return f"{used} of {limit.seconds} seconds ({percent} %)"


def limits_check(*, subscriber_ids, now: datetime | None = None) -> dict:
    """R8.1: check the limits these subscribers' calls count towards (theirs and their
    groups'), for the month now in their zone: a warning once per month when the warning
    threshold is crossed, and a closure when the limit is reached. A closure the operator
    reopened by hand is not made again in the same month. Returns counts."""
    now = now or timezone.now()
    parents = group_tree()
    summary = {"limits": 0, "warned": 0, "closed": 0}
    for limit in limits_of_subscribers(set(subscriber_ids), parents):
        summary["limits"] += 1
        month = month_of(now, _target_zone(limit))
        used = limit_usage(limit, month, parents)
        amount = _amount(limit)
        if limit.warn_percent and used * 100 < amount * limit.warn_percent:
            continue
        if not limit.warn_percent and used < amount:
            continue
        with transaction.atomic():
            state, _ = LimitMonth.objects.select_for_update().get_or_create(limit=limit,
                                                                             month=month)
            if limit.warn_percent and not state.warned_at and \
                    used * 100 >= amount * limit.warn_percent:
                state.warned_at = now
                state.save(update_fields=["warned_at"])
                _warn(limit, used, month)
                summary["warned"] += 1
            if used >= amount and not state.reached_at:
                state.reached_at = now
                state.save(update_fields=["reached_at"])
                reason = f"monthly limit reached: {limit_text(limit, used)} in {month:%Y-%m}"
                target = ({"subscriber": limit.subscriber} if limit.subscriber_id
                          else {"group": limit.group})
                if closure_make(**target, cause=Cause.LIMIT, reason=reason, by="limit",
                                limit=limit, month=month) is not None:
                    summary["closed"] += 1
    return summary


def limits_enforce(*, now: datetime | None = None) -> dict:
    """Check every enabled limit now (`manage.py limits_enforce`; what storing calls
    triggers for the subscribers concerned)."""
    subscriber_ids = set(Limit.objects.filter(enabled=True, subscriber__isnull=False)
                         .values_list("subscriber_id", flat=True))
    parents = group_tree()
    groups = set()
    for group_id in Limit.objects.filter(enabled=True, group__isnull=False).values_list(
            "group_id", flat=True):
        groups |= group_subtree(group_id, parents)
    subscriber_ids |= subscribers_in_groups(groups)
    return limits_check(subscriber_ids=subscriber_ids, now=now)


def _warn(limit: Limit, used, month: date) -> None:
    target = limit.subscriber or limit.group
    text = (f"{target} has used {limit_text(limit, used)} of its monthly limit in "
            f"{month:%Y-%m}. At the limit, its outgoing external calls are closed until the "
            "1st of the next month.")
    _mail(f"Limit warning: {target}", text)
    for profile in _profiles_of(limit):
        event_emit(Event.LIMIT_WARNING, profile=profile, limit_id=limit.pk,
                   subscriber_id=limit.subscriber_id, group_id=limit.group_id,
                   used=str(used), limit=str(_amount(limit)),
                   unit=limit.currency if limit.money is not None else "seconds",
                   percent=limit.warn_percent)


def _mail(subject: str, body: str) -> None:
    """A notice to the default recipient, through the scripts' outbox (sent by the event
    dispatcher once this transaction commits, again later while the server is away)."""
    recipients = mail_config().recipients
    if not recipients:
        logger.info("no default recipient (TARISCOPE_ALERT_EMAIL): not mailed: %s", subject)
        return
    OutgoingMail.objects.create(to=recipients, subject=subject[:500], body=body,
                                script="restrictions")


def _profiles_of(target) -> list[str]:
    """The observer profiles of the devices a limit's or closure's subscribers are on: the
    profiles whose scripts hear of the change."""
    if getattr(target, "subscriber_id", None):
        devices = PhoneNumber.objects.filter(subscriber_id=target.subscriber_id)
    else:
        devices = PhoneNumber.objects.filter(
            subscriber__group_id__in=group_subtree(target.group_id, group_tree()))
    return list(ObserverProfile.objects.filter(
        device_id__in=devices.values("device_id")).values_list("name", flat=True).distinct())


# -- closures ----------------------------------------------------------------------------

def _covered(closure: Closure, parents) -> set[int]:
    if closure.subscriber_id is not None:
        return {closure.subscriber_id}
    return subscribers_in_groups(group_subtree(closure.group_id, parents))


def closure_make(*, subscriber: Subscriber | None = None, group: SubscriberGroup | None = None,
                 cause: str, reason: str, by: str, limit: Limit | None = None,
                 month: date | None = None) -> Closure | None:
    """R8.2: close a subscriber, or a group and its subtree; None when it is closed already
    (a closure in force of its own)."""
    if (subscriber is None) == (group is None):
        raise ValueError("close a subscriber or a group")
    with transaction.atomic():
        parents = group_tree()
        closure = Closure(subscriber=subscriber, group=group, cause=cause, reason=reason[:1000],
                          closed_by=by[:200], limit=limit, month=month)
        covered = _covered(closure, parents)
        before = closed_subscribers(covered, parents)
        try:
            with transaction.atomic():
                closure.save()
        except IntegrityError:
            return None  # closed already
        after = closed_subscribers(covered, parents)
        _class_changed(closure, CLOSED, by, cause, reason, newly=after - before)
    return closure


def closure_reopen(*, closure: Closure, by: str, reason: str) -> Closure:
    """R8.2: end a closure; the extensions nothing else covers are reopened on the PBX."""
    with transaction.atomic():
        closure = Closure.objects.select_for_update().get(pk=closure.pk)
        if not closure.is_open:
            return closure
        parents = group_tree()
        covered = _covered(closure, parents)
        before = closed_subscribers(covered, parents)
        closure.reopened_at = timezone.now()
        closure.reopened_by, closure.reopen_reason = by[:200], reason[:1000]
        closure.save(update_fields=["reopened_at", "reopened_by", "reopen_reason"])
        after = closed_subscribers(covered, parents)
        _class_changed(closure, OPEN, by, closure.cause, reason, newly=before - after)
    return closure


def limits_reopen(*, month: date, by: str = "month start") -> dict:
    """R8.2: reopen the closures made by limits in months before `month` (what runs at
    00:00 on the 1st; `manage.py limits_reopen`)."""
    reopened = 0
    for closure in Closure.objects.filter(cause=Cause.LIMIT, reopened_at__isnull=True,
                                          month__lt=month):
        closure_reopen(closure=closure, by=by,
                       reason=f"a new month ({month:%Y-%m}): the limit of {closure.month:%Y-%m} "
                              "no longer applies")
        reopened += 1
    return {"reopened": reopened}


def limits_reopen_due(*, now: datetime | None = None) -> dict:
    """Reopen every closure made by a limit whose month has ended in its own zone: what
    the 1st of the month at 00:00 in the node's zone does, and what catches up at the next
    start when the system was down then."""
    now = now or timezone.now()
    reopened = 0
    for closure in Closure.objects.filter(cause=Cause.LIMIT, reopened_at__isnull=True):
        zone = (zone_of_subscriber(closure.subscriber_id) if closure.subscriber_id
                else zone_of_group(closure.group_id))
        current = month_of(now, zone)
        if closure.month is not None and closure.month < current:
            closure_reopen(closure=closure, by="month start",
                           reason=f"a new month ({current:%Y-%m}): the limit of "
                                  f"{closure.month:%Y-%m} no longer applies")
            reopened += 1
    return {"reopened": reopened}


def _class_changed(closure: Closure, new_class: str, by: str, cause: str, reason: str, *,
                   newly: set[int]) -> None:
    """The history, the event, the mail and the PBX changes of a closure made or ended;
    `newly`: the subscribers whose class it changed."""
    ClassChange.objects.create(subscriber_id=closure.subscriber_id, group_id=closure.group_id,
                               closure=closure, new_class=new_class, by=by[:200], cause=cause,
                               reason=reason[:1000])
    event = Event.SUBSCRIBER_CLASS_CHANGED if closure.subscriber_id else Event.GROUP_CLASS_CHANGED
    for profile in _profiles_of(closure):
        event_emit(event, profile=profile, subscriber_id=closure.subscriber_id,
                   group_id=closure.group_id, new_class=new_class, cause=cause, by=by,
                   reason=reason, closure_id=closure.pk)
    if cause == Cause.LIMIT or cause == Cause.SCRIPT:
        target = closure.subscriber or closure.group
        verb = "closed" if new_class == CLOSED else "open again"
        _mail(f"Outgoing calls {verb}: {target}", f"{target}: {reason}.")
    action = PbxChange.Action.CLOSE if new_class == CLOSED else PbxChange.Action.REOPEN
    pbx_changes_plan(subscriber_ids=newly, action=action, closure=closure)


def pbx_changes_plan(*, subscriber_ids, action: str, closure: Closure | None) -> list[PbxChange]:
    """The PbxChanges that close or reopen these subscribers' extensions. A close still
    waiting when its reopen comes is cancelled (the PBX never saw it), and the other way
    round; the changes are tried as soon as the transaction commits."""
    if not subscriber_ids:
        return []
    planned = []
    opposite = (PbxChange.Action.REOPEN if action == PbxChange.Action.CLOSE
                else PbxChange.Action.CLOSE)
    for device_id, extension, _subscriber_id in extensions_of(subscriber_ids,
                                                              timezone.localdate()):
        # Nothing kept yet, which restrictions.pbx._planned does before any write: the PBX
        # cannot have seen it (however often it was tried while the PBX was away).
        waiting = PbxChange.objects.filter(device_id=device_id, extension=extension,
                                           action=opposite, status=PbxChange.Status.PENDING,
                                           previous_state__isnull=True)
        if waiting.update(status=PbxChange.Status.CANCELLED, done_at=timezone.now(),
                          answer=f"not needed: {action} came before it was made"):
            continue
        planned.append(PbxChange.objects.create(device_id=device_id, extension=extension,
                                                action=action, closure=closure))
    if planned:
        transaction.on_commit(_pbx_soon)
    return planned


def _pbx_soon() -> None:
    """Make the planned PBX changes now: in a worker with a broker, else in this process."""
    _run_soon("restrictions.pbx_changes_run", pbx_changes_run)


def _run_soon(task_name: str, function, **arguments) -> None:
    """Run a restrictions task by its name (restrictions.tasks wraps these services and so
    cannot be imported here): enqueued with a broker, called here on the embedded default."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            function(**arguments)
        except Exception:  # after a commit: the work is in the database; a retry finds it
            logger.exception("%s failed; it is tried again later", task_name)
        return
    try:
        current_app.send_task(task_name, kwargs=arguments)
    except Exception:  # the broker away: the periodic run does it
        logger.warning("%s not enqueued (the broker is away); the periodic run does it",
                       task_name)


def limits_check_soon(subscriber_ids) -> None:
    """After a commit that grew these subscribers' usage: check their limits."""
    _run_soon("restrictions.limits_check", limits_check,
              subscriber_ids=sorted(subscriber_ids))


def _on_event(event, params) -> None:
    if event == Event.CALL_PROCESSED and params.get("subscribers"):
        subscriber_ids = list(params["subscribers"])
        transaction.on_commit(lambda: limits_check_soon(subscriber_ids))


def restrictions_start() -> None:
    """Check limits after stored calls, and let scripts close subscribers (apps.ready)."""
    event_subscribe(_on_event)
    action_register("close_subscriber", _close_for_script)


def _close_for_script(*, subscriber_id, reason: str, script: str = "a script") -> str:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        raise ValueError(f"no subscriber {subscriber_id!r}")
    closure = closure_make(subscriber=subscriber, cause=Cause.SCRIPT, reason=reason,
                           by=script)
    return "closed" if closure is not None else "closed already"
