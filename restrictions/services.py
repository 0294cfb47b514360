"""R8.1, R8.2: limits checked against the month's usage, closures (the class "closed" of a
subscriber, or of a group and its subtree) made and reopened, each change of class kept
in the history, raised as an event and turned into PbxChanges, which restrictions.pbx then
makes on the PBXs.

A subscriber is closed while any closure in force covers it: its own, or one of its group
or of a group above. The PBX follows that: an extension is closed when its subscriber
becomes closed, and reopened when nothing covers it any more, whatever the order in which
closures are made and reopened."""
import logging
import re
from datetime import date, datetime
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import PhoneNumber, Subscriber, SubscriberGroup
from observers.models import ObserverProfile
from restrictions.models import (
    AuthCode,
    Cause,
    ClassChange,
    Closure,
    Limit,
    LimitMonth,
    PbxChange,
)
from restrictions.pbx import pbx_changes_run
from restrictions.selectors import (
    closed_subscribers,
    extensions_of,
    group_subtree,
    group_tree,
    limit_usage,
    limit_usages,
    limits_of_subscribers,
    month_of,
    subscribers_in_groups,
    zone_of_group,
    zone_of_subscriber,
    zones_of_limits,
)
from scripts.events import Event, action_register, event_emit, event_subscribe
from scripts.mail import mail_config
from scripts.models import OutgoingMail
from tariffs.choices import CallType

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
    reopened by hand is not made again in the same month. Returns counts.

    Runs after every stored batch: the limits, their zones, their usage and their months'
    states are read in a fixed number of queries whatever the number of limits; only a
    limit with something new to do (a warning or a closure) takes a transaction."""
    now = now or timezone.now()
    parents = group_tree()
    summary = {"limits": 0, "warned": 0, "closed": 0}
    limits = limits_of_subscribers(set(subscriber_ids), parents)
    if not limits:
        return summary
    zones = zones_of_limits(limits)
    months = {limit: month_of(now, zones[limit.pk]) for limit in limits}
    usages = limit_usages(months, parents)
    states = {(state.limit_id, state.month): state for state in LimitMonth.objects.filter(
        limit__in=limits, month__in=set(months.values()))}
    for limit in limits:
        summary["limits"] += 1
        month, used, amount = months[limit], usages[limit.pk], _amount(limit)
        warn = bool(limit.warn_percent) and used * 100 >= amount * limit.warn_percent
        reach = used >= amount
        state = states.get((limit.pk, month))
        if not (warn and not (state and state.warned_at)) and \
                not (reach and not (state and state.reached_at)):
            continue  # nothing new: below its thresholds, or warned and closed already
        warned, closed = _limit_act(limit, month, used, now)
        summary["warned"] += warned
        summary["closed"] += closed
    return summary


def _limit_act(limit: Limit, month: date, used, now: datetime) -> tuple[int, int]:
    """The warning and the closure a limit's usage calls for in `month`, each once (the
    month's state locked, so that two checks at once do it once)."""
    amount, warned, closed = _amount(limit), 0, 0
    with transaction.atomic():
        state, _ = LimitMonth.objects.select_for_update().get_or_create(limit=limit, month=month)
        if limit.warn_percent and not state.warned_at and \
                used * 100 >= amount * limit.warn_percent:
            state.warned_at = now
            state.save(update_fields=["warned_at"])
            _warn(limit, used, month)
            warned = 1
        if used >= amount and not state.reached_at:
            state.reached_at = now
            state.save(update_fields=["reached_at"])
            reason = f"monthly limit reached: {limit_text(limit, used)} in {month:%Y-%m}"
            target = ({"subscriber": limit.subscriber} if limit.subscriber_id
                      else {"group": limit.group})
            if closure_make(**target, cause=Cause.LIMIT, reason=reason, by="limit",
                            limit=limit, month=month) is not None:
                closed = 1
    return warned, closed


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


# -- limits and codes as operators edit them ---------------------------------------------
# The pages (restrictions.views) and the site configuration file write limits and codes
# through these.

LIMIT_FIELDS = ("subscriber", "group", "money", "currency", "seconds", "call_types",
                "warn_percent", "enabled")
# What a limit counts and up to where: when one of these changes, the month's warning and
# closure are judged again at the new terms.
_LIMIT_TERMS = ("subscriber_id", "group_id", "money", "currency", "seconds", "call_types",
                "warn_percent")
AUTH_CODE_FIELDS = ("code", "subscriber", "enabled", "description")


def _limit_clean(limit: Limit) -> None:
    """Every rule of a limit, in words: the target, the amount and its unit, the call
    types, the warning; then the model's own checks (full_clean)."""
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if limit.subscriber_id is None and limit.group_id is None:
        refuse("subscriber", "A limit is of a subscriber or of a group: name one.")
    elif limit.subscriber_id is not None and limit.group_id is not None:
        refuse("group", "A limit is of a subscriber or of a group, not both.")
    if limit.money is None and limit.seconds is None:
        refuse("money", "A limit needs an amount: money (with its currency) or seconds.")
    elif limit.money is not None and limit.seconds is not None:
        refuse("seconds", "A limit is in money or in seconds, not both.")
    elif limit.money is not None:
        if limit.money <= 0:
            refuse("money", "A limit in money is more than zero.")
        limit.currency = (limit.currency or "").strip().upper()
        if limit.currency and not re.fullmatch(r"[A-Z]{3}", limit.currency):
            refuse("currency", "An ISO 4217 code: three letters, as UAH.")
    else:
        if limit.seconds <= 0:
            refuse("seconds", "A limit in seconds is more than zero.")
        if limit.currency:
            refuse("currency", "A limit in seconds has no currency.")
    call_types = list(limit.call_types or [])
    unknown = [value for value in call_types if value not in CallType.values]
    if unknown:
        refuse("call_types", f"Unknown call types {unknown}: known are "
                             f"{', '.join(f'{t.value} ({t.label})' for t in CallType)}.")
    limit.call_types = sorted({int(value) for value in call_types if value in CallType.values})
    try:
        limit.full_clean(validate_constraints=False)  # the constraints are the checks above
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def _limit_recheck_on_commit(limit: Limit) -> None:
    """Once committed, the subscribers the limit counts are checked against it (and
    against their other limits): a limit set below what they used this month closes them."""
    if not limit.enabled:
        return
    if limit.subscriber_id is not None:
        subscriber_ids = {limit.subscriber_id}
    else:
        subscriber_ids = subscribers_in_groups(group_subtree(limit.group_id, group_tree()))
    if subscriber_ids:
        transaction.on_commit(lambda: limits_check_soon(subscriber_ids))


def _limit_month_rejudge(limit: Limit, now: datetime) -> None:
    """The month's warning and "reached" stand only as far as they hold at the limit's new
    terms: raised above the usage, the limit warns and closes again when it is reached;
    lowered, what already happened this month is not done twice."""
    month = month_of(now, _target_zone(limit))
    state = LimitMonth.objects.select_for_update().filter(limit=limit, month=month).first()
    if state is None:
        return
    used, amount = limit_usage(limit, month), _amount(limit)
    if state.reached_at and used < amount:
        state.reached_at = None
    if state.warned_at and (not limit.warn_percent or used * 100 < amount * limit.warn_percent):
        state.warned_at = None
    state.save(update_fields=["warned_at", "reached_at"])


def limit_create(*, subscriber: Subscriber | None = None, group: SubscriberGroup | None = None,
                 money: Decimal | None = None, currency: str = "", seconds: int | None = None,
                 call_types=(), warn_percent: int | None = None, enabled: bool = True) -> Limit:
    """R8.1: a monthly limit as an operator or the site configuration sets it; once
    committed, the subscribers it counts are checked against it. Raises ValidationError
    with a message per field."""
    limit = Limit(subscriber=subscriber, group=group, money=money, currency=currency or "",
                  seconds=seconds, call_types=list(call_types or []), warn_percent=warn_percent,
                  enabled=enabled)
    _limit_clean(limit)
    with transaction.atomic():
        limit.save()
        _limit_recheck_on_commit(limit)
    return limit


def limit_update(*, limit: Limit, now: datetime | None = None, **fields) -> Limit:
    """R8.1: change a limit (any of LIMIT_FIELDS). A change of what it counts or of its
    amount judges the month again (_limit_month_rejudge), and its subscribers are checked
    against it once committed. Raises ValidationError with a message per field."""
    unknown = sorted(set(fields) - set(LIMIT_FIELDS))
    if unknown:
        raise TypeError(f"limit_update(): no such field {', '.join(unknown)}; the fields are "
                        f"{', '.join(LIMIT_FIELDS)}")
    with transaction.atomic():
        limit = Limit.objects.select_for_update().get(pk=limit.pk)
        before = [getattr(limit, name) for name in _LIMIT_TERMS]
        for name, value in fields.items():
            setattr(limit, name, value)
        if "call_types" in fields:
            limit.call_types = list(limit.call_types or [])
        _limit_clean(limit)
        limit.save()
        if [getattr(limit, name) for name in _LIMIT_TERMS] != before:
            _limit_month_rejudge(limit, now or timezone.now())
        _limit_recheck_on_commit(limit)
    return limit


def limit_delete(*, limit: Limit) -> None:
    """R8.1: remove a limit and its months. A closure it made stays in force until the
    month ends in its zone (limits_reopen_due) or an operator reopens it."""
    with transaction.atomic():
        Limit.objects.filter(pk=limit.pk).delete()


def _auth_code_clean(auth_code: AuthCode) -> None:
    auth_code.code = (auth_code.code or "").strip()
    auth_code.description = (auth_code.description or "").strip()
    taken = AuthCode.objects.filter(code=auth_code.code).exclude(pk=auth_code.pk)
    if auth_code.code and taken.exists():
        # Whose it is is not said: the code is a secret of its subscriber.
        raise ValidationError({"code": "This code is in use already: choose another."})
    if auth_code.subscriber_id is None:
        raise ValidationError({"subscriber": "An authorization code names the subscriber "
                                             "who pays: name one."})
    auth_code.full_clean(validate_unique=False)


def _auth_code_save(auth_code: AuthCode) -> AuthCode:
    try:
        with transaction.atomic():
            auth_code.save()
    except IntegrityError:  # the same code saved meanwhile by someone else
        raise ValidationError({"code": "This code is in use already: choose another."}) from None
    return auth_code


def auth_code_create(*, code: str, subscriber: Subscriber, enabled: bool = True,
                     description: str = "") -> AuthCode:
    """R8.6: an authorization code of a subscriber. Raises ValidationError with a message
    per field (digits only, not in use already)."""
    auth_code = AuthCode(code=code, subscriber=subscriber, enabled=enabled,
                         description=description)
    _auth_code_clean(auth_code)
    return _auth_code_save(auth_code)


def auth_code_update(*, auth_code: AuthCode, **fields) -> AuthCode:
    """R8.6: change an authorization code (any of AUTH_CODE_FIELDS)."""
    unknown = sorted(set(fields) - set(AUTH_CODE_FIELDS))
    if unknown:
        raise TypeError(f"auth_code_update(): no such field {', '.join(unknown)}; the fields "
                        f"are {', '.join(AUTH_CODE_FIELDS)}")
    auth_code = AuthCode.objects.get(pk=auth_code.pk)
    for name, value in fields.items():
        setattr(auth_code, name, value)
    _auth_code_clean(auth_code)
    return _auth_code_save(auth_code)


def auth_code_delete(*, auth_code: AuthCode) -> None:
    """R8.6: remove an authorization code; calls dialled with it are no longer its
    subscriber's."""
    AuthCode.objects.filter(pk=auth_code.pk).delete()

