"""R8.3-R8.7: the call control. A loop reads each controlled PBX's active calls through its
connector and drops the calls that break one of the device's rules (`PbxControl.call_control`):

    blocked_destinations  R8.7  outgoing calls to numbers starting with a listed prefix
    require_auth_code     R8.6  outgoing calls an extension dialled without a valid code
    min_balance           R8.3  outgoing calls of subscribers whose balance is below it
    max_call_seconds      R8.5  any call longer than it, internal and incoming ones too
    max_call_cost         R8.4  outgoing calls once they last longer than the longest duration
                                the budget pays for at the tariff billing will rate them at

tried in that order; the first rule a call breaks drops it. A call is seen as billing will
see it once it is stored: billing.calls.CallBuilder turns it into an unsaved Call (the
number directory of the day, the dial plan, the authorization code split off, the operator
and the plan), so that the control and the bill never disagree on whose call it is or what
it costs. (The PBX's list does not say which route a call left by: the device's default
operator prices it, as it does a stored call whose trunk is no known route.) "Outgoing" is
a call that leaves the PBX for a number billing can price: internal and incoming calls are
subject to R8.5 only, and so are emergency and service numbers, which nothing else drops.

Each drop is one ControlAction per call and rule. A drop the PBX could not take now
(PbxUnavailable) is kept as such and tried again at the next poll, on the same row; the
event CALL_DROPPED goes once per row, with the outcome: dropped, ended meanwhile, or refused.

Reads per poll, whatever the number of calls: the device's numbers, routes and holidays
(CallBuilder), and, for the rules that are on, the callers' balances, the authorization
codes dialled and the tariff plans of calls seen for the first time; compiled tariff
indexes come from their cache (tariffs.selectors.tariff_index_get). The longest duration
of a call is worked out once, when it is first seen, and kept for the loop's life."""
import difflib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.db.models import Sum
from django.utils import timezone

from billing.calls import CallBuilder
from billing.models import Call, Charge, Payment
from billing.numbering import Kind, parse_number
from observers.backoff import backoff
from observers.models import ObserverProfile
from observers.parsers.base import CallRecord
from restrictions.connectors.base import (
    ActiveCall,
    Connector,
    ConnectorError,
    PbxRefused,
    PbxUnavailable,
)
from restrictions.models import AuthCode, ControlAction, ControlRule, PbxControl
from restrictions.pbx import connector_of, pbx_changes_run
from restrictions.pbxdata import pbx_data_due
from restrictions.services import limits_enforce, limits_reopen_due
from restrictions.sync import pbx_sync_due
from scripts.events import Event, event_emit
from tariffs.choices import CallType, Direction
from tariffs.models import TariffPlan
from tariffs.rating import longest_duration
from tariffs.selectors import tariff_index_get

logger = logging.getLogger(__name__)

# What each key of `call_control` holds, in words, for the messages.
CALL_CONTROL_KEYS = {
    "max_call_cost": 'an amount of money written as a string, such as "25.00", above 0',
    "max_call_seconds": "a whole number of seconds above 0",
    "min_balance": 'an amount of money written as a string, such as "0.00" or "-50.00"',
    "require_auth_code": "true or false",
    "blocked_destinations": 'a list of prefixes in international form, digits only, such as '
                            '["7", "38090"]',
}
# A drop the PBX could not take now: the row's answer starts so, and the next poll tries again.
RETRY = "not dropped yet, tried again at the next poll: "
# A PBX failing poll after poll is asked less often, up to once in this many seconds.
FAILING_MAX_SECONDS = 60
DEFAULT_POLL_SECONDS = 2.0
# What the loop does besides the polls, and how often: on the embedded default (no beat)
# it is what runs these at all; with beat they run there too, and each is idempotent.
PERIODIC = {
    "limits_reopen": timedelta(minutes=1),   # closures of months that have ended reopened
    "pbx_sync": timedelta(minutes=1),        # each device at its own sync_minutes (R8.10)
    "pbx_data": timedelta(minutes=15),       # queue calls and call legs (R8.8, R8.9)
    "limits_enforce": timedelta(hours=1),    # every limit: the net behind the checks
}
_CENT = Decimal("0.01")  # a balance in words (it has no one currency)
# Failures of the database itself (it is away), as opposed to one device's data: they are
# the same for every device, and the loop waits for the database instead.
DATABASE_AWAY = (OperationalError, InterfaceError)

_lock = threading.Lock()  # the memory below
_run_lock = threading.Lock()  # one run at a time in a process
# device id -> call id -> (established at, budget, longest seconds or None, currency)
_longest: dict[int, dict[str, tuple[datetime, Decimal, int | None, str]]] = {}
_failures: dict[int, int] = {}  # device id -> polls failed in a row
_periodic_at: dict[str, datetime] = {}  # PERIODIC's name -> when it last ran


# -- the rules ---------------------------------------------------------------------------

def _money(value) -> Decimal | None:
    """An amount written as a string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _key_problem(name: str, value) -> str | None:
    wrong = f"'{name}' must be {CALL_CONTROL_KEYS[name]}, not {value!r}"
    if name == "max_call_cost":
        amount = _money(value)
        return wrong if amount is None or amount <= 0 else None
    if name == "min_balance":
        return wrong if _money(value) is None else None
    if name == "max_call_seconds":
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return None if ok else wrong
    if name == "require_auth_code":
        return None if isinstance(value, bool) else wrong
    if not isinstance(value, list):
        return wrong
    bad = [repr(item) for item in value
           if not (isinstance(item, str) and item.isdigit() and item.isascii())]
    if bad:
        return f"'{name}' must be {CALL_CONTROL_KEYS[name]}; these are not: {', '.join(bad)}"
    return None


def call_control_problems(config: dict) -> list[str]:
    """Every problem of a device's `call_control` configuration, in words naming the key;
    [] when it is usable. A key set to null is off."""
    if not isinstance(config, dict):
        return ["the call control configuration must be a mapping of keys to values"]
    problems = []
    for name, value in config.items():
        if name not in CALL_CONTROL_KEYS:
            close = difflib.get_close_matches(str(name), list(CALL_CONTROL_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"'{name}' is not a call control key{hint}; the keys are "
                            + ", ".join(f"'{key}'" for key in CALL_CONTROL_KEYS))
        elif value is not None:
            problem = _key_problem(name, value)
            if problem:
                problems.append(problem)
    return problems


class CallControlConfigError(ValueError):
    """A device's `call_control` is wrong; its poll is refused rather than half applied."""


@dataclass(frozen=True)
class Rules:
    """A device's call-control rules, read from its `call_control`."""

    max_call_cost: Decimal | None = None
    max_call_seconds: int | None = None
    min_balance: Decimal | None = None
    require_auth_code: bool = False
    blocked_destinations: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return (self.max_call_cost is not None or self.max_call_seconds is not None
                or self.min_balance is not None or self.require_auth_code
                or bool(self.blocked_destinations))


def rules_of(config: dict) -> Rules:
    """The rules of a `call_control` configuration; CallControlConfigError when it is wrong."""
    problems = call_control_problems(config)
    if problems:
        raise CallControlConfigError("call_control: " + "; ".join(problems))
    return Rules(
        max_call_cost=_money(config.get("max_call_cost")),
        max_call_seconds=config.get("max_call_seconds"),
        min_balance=_money(config.get("min_balance")),
        require_auth_code=bool(config.get("require_auth_code")),
        blocked_destinations=tuple(config.get("blocked_destinations") or ()),
    )


# -- one poll of one device --------------------------------------------------------------

@dataclass
class _Seen:
    """An active call, and the call billing would make of it."""

    active: ActiveCall
    call: Call  # unsaved (billing.calls.CallBuilder): subscriber, number, operator, plan
    start: datetime  # aware: when it was established (when first seen, before that)
    duration: float | None  # seconds since it was established; None before
    from_extension: bool  # an extension of the device dialled it
    outgoing: bool  # it leaves the PBX for a number billing prices (not internal, not 112)


@dataclass
class _Poll:
    """What one poll of a device reads once, for all its calls."""

    control: PbxControl
    rules: Rules
    builder: CallBuilder
    balances: dict[int, Decimal]
    codes: set[str]
    longest: dict[str, tuple[datetime, Decimal, int | None, str]]
    _profiles: list[str] | None = None

    @property
    def profiles(self) -> list[str]:
        """The observer profiles of the device: whose scripts hear of a drop."""
        if self._profiles is None:
            self._profiles = list(ObserverProfile.objects.filter(
                device_id=self.control.device_id).values_list("name", flat=True))
        return self._profiles


def control_poll(control: PbxControl, *, now: datetime | None = None) -> dict:
    """R8.3-R8.7: one look at a device's active calls; each call that breaks a rule dropped
    and recorded. The contact is recorded on `control` (last_poll_at, last_contact_at, or
    last_error and last_error_at; last_error_at keeps the time of the last error once it
    is cleared); a failure is recorded there and raised. Returns counts."""
    now = now or timezone.now()
    try:
        rules = rules_of(control.call_control)
        connector = connector_of(control)
    except Exception as exc:
        _contact(control, now, error=str(exc))
        raise
    try:
        active = connector.active_calls()
    except ConnectorError as exc:
        _contact(control, now, error=str(exc))
        raise
    except Exception as exc:  # an answer the connector could not make sense of
        _contact(control, now, error=f"the PBX's active calls could not be read "
                                     f"({type(exc).__name__}: {exc})")
        raise
    _contact(control, now)
    try:
        return _control(control, connector, rules, active, now)
    except Exception as exc:
        _contact(control, now, error=f"call control failed ({type(exc).__name__}: {exc})")
        raise


def _control(control: PbxControl, connector: Connector, rules: Rules, active: list[ActiveCall],
             now: datetime) -> dict:
    builder = CallBuilder(control.device)
    seen = [_see(builder, call, now) for call in active]
    with _lock:
        known = _longest.setdefault(control.device_id, {})
    poll = _Poll(control, rules, builder, _balances_for(rules, seen), _codes_for(rules, seen),
                 known)
    _longest_for(poll, seen)
    verdicts = []
    for item in seen:
        verdict = _verdict(poll, item)
        if verdict is not None:
            verdicts.append((item, *verdict))
    counts = {"calls": len(active), "dropped": 0, "ended": 0, "failed": 0, "refused": 0}
    existing = _actions_of(control, [item.active.id for item, _, _ in verdicts])
    for item, rule, reason in verdicts:
        outcome = _enforce(poll, connector, item, rule, reason, existing.get((item.active.id, rule)))
        if outcome:
            counts[outcome] += 1
    with _lock:  # forget the calls that have ended
        _longest[control.device_id] = {call.id: known[call.id] for call in active if call.id in known}
    return counts


def _see(builder: CallBuilder, active: ActiveCall, now: datetime) -> _Seen:
    """The active call as billing would build it, were it stored now."""
    duration = active.duration_seconds(active.server_now or now)  # the PBX's clock first
    start = active.established_at or now
    record = CallRecord(source_key=active.id, start=start, duration=int(duration or 0),
                        direction=None, extension=active.caller_number,
                        dialled=active.callee_number)
    call, _decision = builder.build_explained(record)
    from_extension = parse_number(active.caller_number, builder.dial_plan,
                                  builder.numbers.dns)[1] == Kind.EXTENSION
    outgoing = (call.direction == Direction.OUTGOING and bool(call.normalized)
                and call.call_type not in (CallType.INTERNAL, CallType.SERVICE))
    return _Seen(active, call, start, duration, from_extension, outgoing)


def _balances_for(rules: Rules, seen: list[_Seen]) -> dict[int, Decimal]:
    if rules.min_balance is None:
        return {}
    return _balances_of({item.call.subscriber_id for item in seen
                        if item.outgoing and item.call.subscriber_id is not None})


def _balances_of(subscriber_ids) -> dict[int, Decimal]:
    """R7.2 as billing.accounts.balance counts it (payments minus charges, all periods), for
    many subscribers in two queries. (Beside its only user until billing offers it.)"""
    subscriber_ids = set(subscriber_ids)
    if not subscriber_ids:
        return {}

    def sums(model) -> dict[int, Decimal]:
        return dict(model.objects.filter(subscriber_id__in=subscriber_ids).order_by()
                    .values("subscriber_id").annotate(total=Sum("amount"))
                    .values_list("subscriber_id", "total"))

    paid, charged = sums(Payment), sums(Charge)
    zero = Decimal(0)
    return {pk: (paid.get(pk) or zero) - (charged.get(pk) or zero) for pk in subscriber_ids}


def _codes_for(rules: Rules, seen: list[_Seen]) -> set[str]:
    """The enabled authorization codes among those dialled."""
    dialled = {item.call.auth_code for item in seen if item.call.auth_code}
    if not rules.require_auth_code or not dialled:
        return set()
    return set(AuthCode.objects.filter(enabled=True, code__in=dialled)
               .values_list("code", flat=True))


def _longest_for(poll: _Poll, seen: list[_Seen]) -> None:
    """R8.4: the longest duration within the budget of each outgoing call seen for the first
    time since it was established (or since the budget changed), at the tariff billing
    will rate it at: the call's operator and plan, its start in the device's zone, the
    node's holidays."""
    budget = poll.rules.max_call_cost
    if budget is None:
        return
    new = [item for item in seen if item.outgoing and item.active.established_at is not None
           and poll.longest.get(item.active.id, (None, None))[:2] != (item.start, budget)]
    plans = TariffPlan.objects.in_bulk({item.call.plan_id for item in new
                                        if item.call.plan_id is not None})
    for item in new:
        call = item.call
        longest, currency = None, ""
        if call.operator_id is not None and call.plan_id in plans:
            index = tariff_index_get(operator=call.operator, plan=plans[call.plan_id])
            local = item.start.astimezone(poll.builder.zone)
            longest = longest_duration(
                index, number=call.normalized, at=local.replace(tzinfo=None),
                direction=Direction.OUTGOING, budget=budget,
                holiday=poll.builder.holidays.is_holiday(local.date()))
            currency = call.operator.currency
        if longest is None:
            logger.info("call control of %s: no tariff prices call %s to %s (%s): max_call_cost "
                        "does not apply to it", poll.builder.device.name, item.active.id,
                        call.normalized, call.rating_note)
        poll.longest[item.active.id] = (item.start, budget, longest, currency)


def _verdict(poll: _Poll, item: _Seen) -> tuple[str, str] | None:
    """(rule, reason in words) of the first rule the call breaks, or None."""
    rules, call, duration = poll.rules, item.call, item.duration
    number = call.normalized
    if item.outgoing:
        prefix = next((p for p in rules.blocked_destinations if number.startswith(p)), None)
        if prefix is not None:
            return ControlRule.BLOCKED_DESTINATION, (
                f"call to {number}: destination {prefix} is blocked")
        if rules.require_auth_code and item.from_extension and call.auth_code not in poll.codes:
            how = ("with an authorization code that is unknown or disabled" if call.auth_code
                   else "without an authorization code")
            return ControlRule.AUTH_CODE, f"call to {number} dialled {how}"
        balance = poll.balances.get(call.subscriber_id)
        if rules.min_balance is not None and balance is not None and balance < rules.min_balance:
            return ControlRule.MIN_BALANCE, (
                f"call to {number}: the caller's balance "
                f"{balance.quantize(_CENT, ROUND_HALF_UP)} is below the minimum {rules.min_balance}")
    if rules.max_call_seconds is not None and duration is not None \
            and duration > rules.max_call_seconds:
        return ControlRule.MAX_CALL_SECONDS, (
            f"the call has lasted {int(duration):,} s, longer than the maximum of "
            f"{rules.max_call_seconds:,} s")
    known = poll.longest.get(item.active.id)
    if item.outgoing and rules.max_call_cost is not None and known is not None \
            and known[2] is not None and duration is not None and duration > known[2]:
        amount = " ".join(filter(None, (str(rules.max_call_cost), known[3])))
        return ControlRule.MAX_CALL_COST, (
            f"call to {number} would cost more than {amount} after {known[2]:,} s")
    return None


# -- dropping ----------------------------------------------------------------------------

def _actions_of(control: PbxControl, call_ids: list[str]) -> dict[tuple[str, str], ControlAction]:
    if not call_ids:
        return {}
    return {(action.pbx_call_id, action.rule): action for action in
            ControlAction.objects.filter(device_id=control.device_id, pbx_call_id__in=call_ids)}


def _enforce(poll: _Poll, connector: Connector, item: _Seen, rule: str, reason: str,
             action: ControlAction | None) -> str | None:
    """Drop the call and record it; its outcome ("dropped", "ended", "failed", "refused"),
    or None when it was dealt with before (dropped, ended or refused once is enough)."""
    if action is not None and not action.answer.startswith(RETRY):
        return None
    outcome, answer = _drop(connector, item.active.id)
    with transaction.atomic():
        action, _ = ControlAction.objects.update_or_create(
            device_id=poll.control.device_id, pbx_call_id=item.active.id, rule=rule,
            defaults={"caller": item.active.caller[:200], "callee": item.active.callee[:200],
                      "subscriber_id": item.call.subscriber_id, "reason": reason[:1000],
                      "dropped": outcome == "dropped", "answer": answer[:1000]})
        if outcome != "failed":
            for profile in poll.profiles:
                event_emit(Event.CALL_DROPPED, profile=profile, action_id=action.pk,
                           device=poll.builder.device.name, rule=rule, reason=action.reason,
                           caller=action.caller, callee=action.callee,
                           subscriber_id=action.subscriber_id, dropped=action.dropped)
    log = logger.error if outcome == "refused" else logger.warning
    log("call control of %s: call %s from %s to %s %s: %s (%s)", poll.builder.device.name,
        item.active.id, item.active.caller, item.active.callee, _OUTCOME_WORDS[outcome],
        reason, answer)
    return outcome


_OUTCOME_WORDS = {"dropped": "dropped", "ended": "had ended", "failed": "not dropped yet",
                  "refused": "not dropped, the PBX refused"}


def _drop(connector: Connector, call_id: str) -> tuple[str, str]:
    """(outcome, the PBX's answer in words) of one drop."""
    try:
        if connector.drop_call(call_id):
            return "dropped", "dropped by the PBX"
        return "ended", "the PBX no longer had the call: it ended before it could be dropped"
    except PbxRefused as exc:
        return "refused", f"refused by the PBX: {exc}"
    except PbxUnavailable as exc:
        return "failed", RETRY + str(exc)
    except Exception as exc:  # an answer the connector could not read: try again
        return "failed", RETRY + f"{type(exc).__name__}: {exc}"


def _contact(control: PbxControl, now: datetime, *, error: str = "") -> None:
    """What the poll found of the PBX, on its PbxControl (and on `control`)."""
    fields = {"last_poll_at": now}
    if error:
        fields.update(last_error=error[:1000], last_error_at=now)
    else:
        fields.update(last_contact_at=now, last_error="")
    for name, value in fields.items():  # first: what failed is known even if this fails
        setattr(control, name, value)
    PbxControl.objects.filter(pk=control.pk).update(**fields)


# -- every device, and the loop ----------------------------------------------------------

def control_memory_clear() -> None:
    """Forget what the control keeps between polls (longest durations, failing PBXs): a
    restart does; tests do between cases."""
    with _lock:
        _longest.clear()
        _failures.clear()
        _periodic_at.clear()


def control_run_once(*, now: datetime | None = None, device: str | None = None) -> dict:
    """One round: every controlled device whose `poll_seconds` have passed since its last
    poll (or the device named, now), each on its own, so that a PBX that is away, answers
    500 or garbage only records its error; then the PBX changes due (restrictions.pbx) and
    what PERIODIC says is due. Returns what each did, JSON-able:
    {"devices": {name: counts, "skipped" or "error"}, "pbx_changes": ..., ...}."""
    now = now or timezone.now()
    controls = _controls(device)
    if not _run_lock.acquire(blocking=False):
        return {"busy": "another run of the call control is under way in this process"}
    try:
        summary: dict = {"devices": {}}
        for control in controls:
            summary["devices"][control.device.name] = _poll_guarded(control, now,
                                                                    due=device is not None)
        summary["pbx_changes"] = _guarded("the PBX changes", pbx_changes_run)
        if _periodic_due("limits_reopen", now):
            summary["limits_reopen"] = _guarded("reopening limits", limits_reopen_due, now=now)
        return summary
    finally:
        _run_lock.release()


def control_periodic(*, now: datetime | None = None) -> dict:
    """What the loop runs besides its rounds, each when PERIODIC says it is due: the
    extensions synced, the queue calls and legs imported, every limit checked."""
    now = now or timezone.now()
    if not _run_lock.acquire(blocking=False):
        return {}
    try:
        return {name: _guarded(name.replace("_", " "), function, now=now)
                for name, function in (("pbx_sync", pbx_sync_due), ("pbx_data", pbx_data_due),
                                       ("limits_enforce", limits_enforce))
                if _periodic_due(name, now)}
    finally:
        _run_lock.release()


def _controls(device: str | None) -> list[PbxControl]:
    controls = (PbxControl.objects.exclude(connector={}).select_related("device")
                .order_by("device__name"))
    if device is None:
        return list(controls)
    named = list(controls.filter(device__name=device))
    if not named:
        raise LookupError(f"no device named {device!r} has a PBX connector")
    return named


def _poll_guarded(control: PbxControl, now: datetime, *, due: bool) -> dict:
    if not call_control_problems(control.call_control) and not rules_of(control.call_control).any:
        return {"skipped": "no call-control rule is on"}
    if not due and not _due(control, now):
        return {"skipped": "not due yet"}
    try:
        counts = control_poll(control, now=now)
    except DATABASE_AWAY:
        raise  # for every device alike: the loop waits for the database
    except Exception:
        with _lock:
            failures = _failures[control.device_id] = _failures.get(control.device_id, 0) + 1
        logger.warning("call control of %s: %s (%s failure(s) in a row)", control.device.name,
                       control.last_error, failures)
        return {"error": control.last_error}
    with _lock:
        _failures.pop(control.device_id, None)
    return counts


def _due(control: PbxControl, now: datetime) -> bool:
    """Its poll_seconds have passed since its last poll; longer, doubling, while it fails."""
    if control.last_poll_at is None:
        return True
    try:
        wait = float(connector_of(control).poll_seconds)
    except Exception:  # a wrong connector configuration: its poll records why
        wait = DEFAULT_POLL_SECONDS
    failures = _failures.get(control.device_id, 0)
    if failures:
        wait = max(wait, backoff(failures - 1, wait, FAILING_MAX_SECONDS))
    elapsed = (now - control.last_poll_at).total_seconds()
    return elapsed < 0 or elapsed >= wait  # (a clock set back: at once)


def _guarded(what: str, function, **arguments) -> dict:
    try:
        return function(**arguments)
    except DATABASE_AWAY:
        raise
    except Exception as exc:
        logger.exception("call control: %s failed", what)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _periodic_due(name: str, now: datetime) -> bool:
    """PERIODIC[name] has passed since it last ran in this process (at once after a start:
    what was missed while the system was down catches up)."""
    with _lock:
        last = _periodic_at.get(name)
        if last is not None and abs(now - last) < PERIODIC[name]:
            return False
        _periodic_at[name] = now
        return True


def control_loop(stop: threading.Event, *, interval: float = 2.0, device: str | None = None) -> None:
    """Run the call control until `stop` is set (`manage.py pbx_control`): a round every
    `interval` seconds (keep it at most the smallest poll_seconds). Any failure is logged
    and the next round comes; a database that is away is waited for, longer each time.
    Without `device`, control_periodic() follows each round.
    LookupError at once when the device named has no connector."""
    if device is not None:
        _controls(device)
    failures = 0
    try:
        while not stop.is_set():
            close_old_connections()  # one that broke (the database restarted) is made again
            delay = interval
            try:
                control_run_once(device=device)
                if device is None:
                    control_periodic()
                failures = 0
            except DatabaseError as exc:
                delay = backoff(failures, max(interval, 0.1), FAILING_MAX_SECONDS)
                failures += 1
                logger.warning("call control: the database is away (%s); again in %.0f s", exc,
                               delay)
            except Exception:
                logger.exception("call control: the round failed; the next in %s s", interval)
            stop.wait(delay)
    finally:
        connection.close()
