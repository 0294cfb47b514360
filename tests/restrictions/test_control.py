"""R8.3-R8.7: the call control (restrictions/control.py) against the fake 3CX over HTTP and a
real database: each rule drops the call that breaks it and no other, the longest duration
within a budget holds to the second at the tariff billing would use, a drop the PBX could
not take is tried again on the same record, a PBX that is away, answers 500 or garbage only
records its error, and `manage.py pbx_control` prints its round or runs until SIGTERM.

The fake 3CX (v20) gives ServerNow from the real clock, which time_machine moves: the calls'
durations are then exact. v18 gives no ServerNow: there the poll's own `now` counts."""
import io
import json
import os
import signal
import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.accounts import payment_create
from billing.models import Charge, Holiday
from restrictions import control as control_module
from restrictions.control import (
    RETRY,
    call_control_problems,
    control_loop,
    control_memory_clear,
    control_periodic,
    control_poll,
    control_run_once,
)
from restrictions.models import AuthCode, ControlAction, ControlRule, PbxControl
from scripts.events import Event, event_subscribe
from tariffs.models import TariffPrice, TimeBand
from tariffs.services import operator_rates_changed
from tests.conftest import pg_connect

# Monday 10 March 2025, 09:00 UTC: 11:00 in Kyiv (EET, UTC+2), a working day.
T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_memory():
    """The control remembers longest durations and failing PBXs per device id, which SQLite
    gives again to the next test's device."""
    control_memory_clear()
    yield
    control_memory_clear()


@pytest.fixture
def events():
    """The params of the CALL_DROPPED events raised, in order."""
    seen = []
    unsubscribe = event_subscribe(
        lambda event, params: seen.append(params) if event == Event.CALL_DROPPED else None)
    yield seen
    unsubscribe()


@pytest.fixture
def control(site, v20_config, fake3cx):
    """The site's 3CX (KyivPBX) controlled through the fake v20, no call active yet."""
    fake3cx.active_calls.clear()
    return PbxControl.objects.create(device=site.device, connector=v20_config, call_control={})


def rules(control, **call_control) -> PbxControl:
    control.call_control = call_control
    control.save(update_fields=["call_control"])
    return control


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def talking(fake, call_id: int, caller: str, callee: str, since: datetime) -> None:
    """A call in progress on the fake PBX, established at `since`."""
    fake.active_calls[call_id] = {"Id": call_id, "Caller": caller, "Callee": callee,
                                  "Status": "Talking", "EstablishedAt": iso(since),
                                  "LastChangeStatus": iso(since)}


def poll_at(control, moment: datetime) -> dict:
    """One poll with the clock (ours and the fake PBX's) at `moment`."""
    with time_machine.travel(moment, tick=False):
        return control_poll(control)


def actions() -> list[tuple[str, str, bool]]:
    return sorted(ControlAction.objects.values_list("pbx_call_id", "rule", "dropped"))


# -- the configuration -------------------------------------------------------------------

@pytest.mark.parametrize("config", [
    {},
    {"max_call_cost": "25.00", "max_call_seconds": 3600, "min_balance": "-50.00",
     "require_auth_code": True, "blocked_destinations": ["7", "38090"]},
    {"max_call_cost": None, "blocked_destinations": []},
])
def test_a_usable_call_control_has_no_problems(config):
    assert call_control_problems(config) == []


@pytest.mark.parametrize(("config", "problem"), [
    ({"max_call_cost": 25}, "'max_call_cost' must be an amount of money written as a string"),
    ({"max_call_cost": "0"}, "'max_call_cost' must be"),
    ({"max_call_cost": "lots"}, "'max_call_cost' must be"),
    ({"max_call_cost": "NaN"}, "'max_call_cost' must be"),
    ({"max_call_seconds": 0}, "'max_call_seconds' must be a whole number of seconds above 0"),
    ({"max_call_seconds": "600"}, "'max_call_seconds' must be"),
    ({"max_call_seconds": True}, "'max_call_seconds' must be"),
    ({"min_balance": 0.5}, "'min_balance' must be an amount of money"),
    ({"require_auth_code": "yes"}, "'require_auth_code' must be true or false"),
    ({"blocked_destinations": "7"}, "'blocked_destinations' must be a list of prefixes"),
    ({"blocked_destinations": ["7", "+44", 380]}, "these are not: '+44', 380"),
    ({"max_cost": "5.00"}, "'max_cost' is not a call control key (did you mean 'max_call_cost'?)"),
])
def test_a_wrong_call_control_is_told_by_key(config, problem):
    problems = call_control_problems(config)
    assert len(problems) == 1 and problem in problems[0], problems


def test_a_call_control_that_is_not_a_mapping_is_a_problem():
    assert call_control_problems(["max_call_seconds"]) == [
        "the call control configuration must be a mapping of keys to values"]


def test_a_wrong_call_control_is_recorded_and_nothing_is_dropped(control, fake3cx):
    # given a configuration with a misspelt key and a call that breaks the other rule
    rules(control, max_call_seconds=60, max_cost="1.00")
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=600))
    # when the control runs
    with time_machine.travel(T0, tick=False):
        summary = control_run_once()
    # then the problem is the device's error, and no rule was half applied
    assert "did you mean 'max_call_cost'" in summary["devices"]["KyivPBX"]["error"]
    control.refresh_from_db()
    assert control.last_error.startswith("call_control: 'max_cost' is not a call control key")
    assert control.last_error_at == T0
    assert 501 in fake3cx.active_calls and actions() == []


# -- each rule drops the call that breaks it, and no other -------------------------------

def test_a_call_to_a_blocked_destination_is_dropped_by_its_international_form(
        site, control, fake3cx, events):
    # given Russia (7) blocked, and calls to Moscow, to a Ukrainian number that begins with 7
    # once the access and national prefixes are off (0771...), to 112, and an internal call
    rules(control, blocked_destinations=["7"])
    since = T0 - timedelta(seconds=30)
    talking(fake3cx, 501, "101 Ivan Petrenko", "900749512345678", since)  # 9, 00, 7495...
    talking(fake3cx, 502, "102 Olena Koval", "90771234567", since)  # 9, 0 -> 380771234567
    talking(fake3cx, 503, "101 Ivan Petrenko", "112", since)
    talking(fake3cx, 504, "102 Olena Koval", "101 Ivan Petrenko", since)
    # when the control polls
    counts = poll_at(control, T0)
    # then only the call to Moscow is dropped, and recorded with why
    assert counts == {"calls": 4, "dropped": 1, "ended": 0, "failed": 0, "refused": 0}
    assert sorted(fake3cx.active_calls) == [502, 503, 504]
    action = ControlAction.objects.get()
    assert (action.pbx_call_id, action.rule, action.dropped) == (
        "501", ControlRule.BLOCKED_DESTINATION, True)
    assert action.reason == "call to 749512345678: destination 7 is blocked"
    assert (action.caller, action.callee, action.subscriber) == (
        "101 Ivan Petrenko", "900749512345678", site.subscriber)
    assert action.answer == "dropped by the PBX"
    # and the device's profile heard of it
    assert events == [{
        "profile": site.profile.name, "action_id": action.pk, "device": "KyivPBX",
        "rule": "blocked_destination", "reason": action.reason, "caller": "101 Ivan Petrenko",
        "callee": "900749512345678", "subscriber_id": site.subscriber.pk, "dropped": True}]


@pytest.mark.parametrize(("dialled", "reason"), [
    # 9, then the code 5555 (disabled), then the number
    ("955550441234567", "call to 380441234567 dialled with an authorization code that is "
                        "unknown or disabled"),
    # 9, then too few digits to hold a code and a number
    ("9123", "call to 38044123 dialled without an authorization code"),
])
def test_a_call_without_a_valid_authorization_code_is_dropped(site, control, fake3cx, dialled,
                                                              reason):
    # given codes dialled after the access code, four digits: 4321 valid, 5555 disabled
    site.device.auth_code_position, site.device.auth_code_length = "before", 4
    site.device.save()
    AuthCode.objects.create(code="4321", subscriber=site.subscriber)
    AuthCode.objects.create(code="5555", subscriber=site.colleague, enabled=False)
    rules(control, require_auth_code=True)
    since = T0 - timedelta(seconds=30)
    talking(fake3cx, 501, "101 Ivan Petrenko", "943210441234567", since)  # with 4321
    talking(fake3cx, 502, "102 Olena Koval", dialled, since)
    talking(fake3cx, 503, "102 Olena Koval", "101 Ivan Petrenko", since)  # internal
    talking(fake3cx, 504, "101 Ivan Petrenko", "112", since)  # emergency
    # when the control polls
    poll_at(control, T0)
    # then only the call without a valid code is dropped, and the code is not in the reason
    assert actions() == [("502", ControlRule.AUTH_CODE, True)]
    assert ControlAction.objects.get().reason == reason
    assert sorted(fake3cx.active_calls) == [501, 503, 504]


def test_a_call_of_a_subscriber_below_the_minimum_balance_is_dropped(site, control, fake3cx):
    # given Ivan at -5.00 (paid 10.00, charged 15.00) and Olena at 5.00, the minimum 0.00
    payment_create(subscriber=site.subscriber, amount=Decimal("10.00"), day=date(2025, 3, 1))
    Charge.objects.create(subscriber=site.subscriber, period_start=date(2025, 2, 1),
                          period_end=date(2025, 2, 28), service_name="Kyiv",
                          amount=Decimal("15.0000"), currency="UAH")
    payment_create(subscriber=site.colleague, amount=Decimal("5.00"), day=date(2025, 3, 1))
    rules(control, min_balance="0.00")
    since = T0 - timedelta(seconds=30)
    talking(fake3cx, 501, "101 Ivan Petrenko", "90441234567", since)
    talking(fake3cx, 502, "102 Olena Koval", "90441234567", since)
    talking(fake3cx, 503, "101 Ivan Petrenko", "102 Olena Koval", since)  # internal
    # when the control polls
    poll_at(control, T0)
    # then Ivan's outgoing call is dropped; his internal call and Olena's call go on
    assert actions() == [("501", ControlRule.MIN_BALANCE, True)]
    assert ControlAction.objects.get().reason == (
        "call to 380441234567: the caller's balance -5.00 is below the minimum 0.00")
    assert sorted(fake3cx.active_calls) == [502, 503]


def test_a_call_longer_than_the_maximum_is_dropped_internal_ones_too(control, fake3cx):
    # given at most 600 s, an internal call of 601 s, an outgoing one of exactly 600 s and
    # an incoming one of 30 s
    rules(control, max_call_seconds=600)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=601))
    talking(fake3cx, 502, "102 Olena Koval", "90441234567", T0 - timedelta(seconds=600))
    talking(fake3cx, 503, "0501234567", "101 Ivan Petrenko", T0 - timedelta(seconds=30))
    # when the control polls
    poll_at(control, T0)
    # then only the call longer than 600 s is dropped
    assert actions() == [("501", ControlRule.MAX_CALL_SECONDS, True)]
    assert ControlAction.objects.get().reason == (
        "the call has lasted 601 s, longer than the maximum of 600 s")
    assert sorted(fake3cx.active_calls) == [502, 503]


def test_the_first_rule_broken_is_the_one_recorded(site, control, fake3cx):
    # given a call to a blocked destination that has also lasted too long
    rules(control, blocked_destinations=["44"], max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "900442071234567", T0 - timedelta(seconds=90))
    # when the control polls; then it is dropped for the destination (R8.7 comes first)
    poll_at(control, T0)
    assert actions() == [("501", ControlRule.BLOCKED_DESTINATION, True)]


# -- R8.4: the longest duration within the budget, to the second -------------------------

def test_a_call_is_dropped_the_second_it_lasts_longer_than_its_budget_pays_for(
        site, control, fake3cx, monkeypatch):
    # given mobiles 38067 billed 30/6 at 1.20/min with a 0.30 connection fee, and a budget
    # of 5.00 a call: 0.30 + 0.02 a billed second stays within 5.00 up to 235 billed
    # seconds, and billed time is 30 + 6k: 234 s cost 4.98; 235 s are billed 240 s, 5.10.
    # Kyiv 38044 (0.50/min, 60/60) pays for 10 minutes: 600 s.
    site.priced_code(code="38067", price="1.20", name="Kyivstar", first=30, step=6, fee="0.30")
    rules(control, max_call_cost="5.00")
    talking(fake3cx, 501, "101 Ivan Petrenko", "90671234567", T0)
    talking(fake3cx, 502, "102 Olena Koval", "90441234567", T0)
    talking(fake3cx, 503, "101 Ivan Petrenko", "102 Olena Koval", T0)
    worked_out = []
    real = control_module.longest_duration
    monkeypatch.setattr(control_module, "longest_duration",
                        lambda index, **kw: worked_out.append(kw["number"]) or real(index, **kw))
    # when the control polls 10 s in, at 234 s and at 235 s
    poll_at(control, T0 + timedelta(seconds=10))
    poll_at(control, T0 + timedelta(seconds=234))
    before = actions()
    poll_at(control, T0 + timedelta(seconds=235))
    # then nothing is dropped up to 234 s, and the mobile call at 235 s
    assert before == []
    assert actions() == [("501", ControlRule.MAX_CALL_COST, True)]
    assert ControlAction.objects.get().reason == (
        "call to 380671234567 would cost more than 5.00 UAH after 234 s")
    assert sorted(fake3cx.active_calls) == [502, 503]
    # and the longest duration was worked out once per outgoing call, when first seen
    assert sorted(worked_out) == ["380441234567", "380671234567"]
    # and the Kyiv call goes at 601 s, not at 600 s
    poll_at(control, T0 + timedelta(seconds=600))
    assert 502 in fake3cx.active_calls
    poll_at(control, T0 + timedelta(seconds=601))
    assert sorted(fake3cx.active_calls) == [503]


@pytest.mark.parametrize(("established", "seconds"), [
    # 11:00 in Kyiv on a working day: the base price 0.50/min buys 2 minutes with 1.00
    (datetime(2025, 3, 10, 9, 0, tzinfo=UTC), 120),
    # 16:30 UTC is 18:30 in Kyiv: the evening band (from 18:00) at 0.25/min buys 4 minutes
    # (by UTC the call would be at the base price)
    (datetime(2025, 3, 10, 16, 30, tzinfo=UTC), 240),
    # the node's own holiday (11 March): the holiday band at 0.10/min buys 10 minutes
    (datetime(2025, 3, 11, 9, 0, tzinfo=UTC), 600),
])
def test_the_budget_is_counted_at_the_band_of_the_start_in_the_device_zone(
        site, control, fake3cx, established, seconds):
    # given Kyiv calls at 0.50/min, 0.25/min from 18:00, 0.10/min on holidays, and a budget
    # of 1.00
    evening = TimeBand.objects.create(operator=site.operator, name="evening", weekdays="1234567",
                                      start_time=time(18), end_time=time(0))
    holidays = TimeBand.objects.create(operator=site.operator, name="holidays", holidays=True)
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=site.plan, band=evening,
                               price_per_minute=Decimal("0.25"))
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=site.plan, band=holidays,
                               price_per_minute=Decimal("0.10"))
    operator_rates_changed(operator_ids=[site.operator.pk])
    Holiday.objects.create(node=site.node, date=date(2025, 3, 11), name="Company day")
    rules(control, max_call_cost="1.00")
    talking(fake3cx, 501, "101 Ivan Petrenko", "90441234567", established)
    # when the control polls at that many seconds, and one second later
    poll_at(control, established + timedelta(seconds=seconds))
    kept = sorted(fake3cx.active_calls)
    poll_at(control, established + timedelta(seconds=seconds + 1))
    # then the call lasts exactly what the band's price pays for
    assert kept == [501] and fake3cx.active_calls == {}
    assert ControlAction.objects.get().reason.endswith(f"more than 1.00 UAH after {seconds} s")


# -- drops that fail ---------------------------------------------------------------------

def test_a_drop_the_pbx_could_not_take_is_tried_again_on_the_same_record(
        site, control, fake3cx, events):
    # given a call longer than the maximum, and the PBX answering its drop 503 once
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=61))
    fake3cx.fail("status", status=503, times=1, path="/xapi/v1/ActiveCalls(")
    # when the control polls
    first = poll_at(control, T0)
    # then the call goes on, recorded as not dropped yet with the PBX's error, no event yet
    assert first["failed"] == 1 and 501 in fake3cx.active_calls
    action = ControlAction.objects.get()
    assert not action.dropped
    assert action.answer.startswith(RETRY) and "HTTP 503" in action.answer
    assert events == []
    # when it polls again
    second = poll_at(control, T0 + timedelta(seconds=2))
    # then the call is dropped, on the same record, and the event goes once
    assert second["dropped"] == 1 and fake3cx.active_calls == {}
    again = ControlAction.objects.get()
    assert (again.pk, again.dropped, again.answer) == (action.pk, True, "dropped by the PBX")
    assert [e["dropped"] for e in events] == [True]
    assert len(fake3cx.requests("v20", "POST", "/xapi/v1/ActiveCalls(")) == 2


def test_a_call_that_ended_before_its_drop_is_recorded_as_not_dropped(control, fake3cx, events):
    # given a call longer than the maximum, which ends just as it is dropped
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=61))
    fake3cx.corrupt("DropCall", lambda status, payload: (
        404, {"error": {"code": "404", "message": "The call was not found"}}))
    # when the control polls
    counts = poll_at(control, T0)
    # then it is recorded as not dropped, and said so
    assert counts["ended"] == 1
    action = ControlAction.objects.get()
    assert not action.dropped and "ended before it could be dropped" in action.answer
    assert [e["dropped"] for e in events] == [False]


def test_a_drop_the_pbx_refuses_is_recorded_and_not_tried_again(control, fake3cx, events):
    # given a call longer than the maximum whose drop the PBX refuses (403)
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=61))
    fake3cx.fail("status", status=403, times=1, path="/xapi/v1/ActiveCalls(")
    # when the control polls twice
    first = poll_at(control, T0)
    second = poll_at(control, T0 + timedelta(seconds=2))
    # then the refusal is recorded once, with the event, and the drop was asked for once
    assert first["refused"] == 1 and second == {"calls": 1, "dropped": 0, "ended": 0,
                                                "failed": 0, "refused": 0}
    action = ControlAction.objects.get()
    assert not action.dropped and action.answer.startswith("refused by the PBX:")
    assert [e["dropped"] for e in events] == [False]
    assert len(fake3cx.requests("v20", "POST", "/xapi/v1/ActiveCalls(")) == 1


# -- the PBX away, answering 500 or garbage ----------------------------------------------

def _spoil(fake):
    fake.corrupt("ListActiveCall", lambda status, payload: (200, {"value": [{"Caller": "101"}]}))


@pytest.mark.parametrize("failure", ["down", "500", "garbage"])
def test_a_pbx_that_fails_is_recorded_the_others_go_on_and_it_is_back_after_heal(
        site, control, fake3cx, second_device, v18_config, fake3cx_v18, failure):
    # given KyivPBX (v20) and LvivPBX (v18), each with a call longer than the maximum
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=90))
    fake3cx_v18.active_calls.clear()
    talking(fake3cx_v18, 601, "201 Taras", "202 Oksana", T0 - timedelta(seconds=90))
    lviv = PbxControl.objects.create(device=second_device, connector=v18_config,
                                     call_control={"max_call_seconds": 60})
    # and KyivPBX failing
    if failure == "down":
        fake3cx.fail("down")
    elif failure == "500":
        fake3cx.fail("status", status=500, path="/xapi/v1/ActiveCalls")
    else:
        _spoil(fake3cx)
    # when the control runs
    with time_machine.travel(T0, tick=False):
        summary = control_run_once()
    # then KyivPBX's error is recorded, and LvivPBX's call was dropped all the same
    fake3cx.violations.clear()  # the garbage breaks the description on purpose
    assert set(summary["devices"]) == {"KyivPBX", "LvivPBX"}
    assert summary["devices"]["KyivPBX"]["error"]
    assert summary["devices"]["LvivPBX"]["dropped"] == 1 and fake3cx_v18.active_calls == {}
    control.refresh_from_db()
    assert control.last_error == summary["devices"]["KyivPBX"]["error"]
    assert (control.last_error_at, control.last_poll_at, control.last_contact_at) == (T0, T0, None)
    assert 501 in fake3cx.active_calls
    lviv.refresh_from_db()
    assert (lviv.last_contact_at, lviv.last_error) == (T0, "")
    # when the PBX is back, and the control runs again
    fake3cx.heal()
    later = T0 + timedelta(seconds=5)
    with time_machine.travel(later, tick=False):
        summary = control_run_once()
    # then it works again: the call dropped, the error cleared
    assert summary["devices"]["KyivPBX"]["dropped"] == 1 and fake3cx.active_calls == {}
    control.refresh_from_db()
    assert (control.last_error, control.last_contact_at, control.last_error_at) == ("", later, T0)


def test_a_failing_pbx_is_polled_less_often_while_it_fails(control, fake3cx):
    # given a PBX that is down, polled every 2 s
    rules(control, max_call_seconds=60)
    fake3cx.fail("down")
    # when the control runs at 0 s (fails), 2 s (fails again), 5 s and 6 s
    outcomes = []
    for second in (0, 2, 5, 6):
        with time_machine.travel(T0 + timedelta(seconds=second), tick=False):
            outcomes.append(control_run_once()["devices"]["KyivPBX"])
    # then after the second failure in a row it waits 4 s, not 2
    assert ["error" in o for o in outcomes] == [True, True, False, True]
    assert outcomes[2] == {"skipped": "not due yet"}


def test_devices_without_rules_or_not_due_are_left_alone(control, fake3cx):
    # given a controlled PBX with no rule on
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=9999))
    with time_machine.travel(T0, tick=False):
        quiet = control_run_once()
    # then it is not asked for its calls
    assert quiet["devices"] == {"KyivPBX": {"skipped": "no call-control rule is on"}}
    assert fake3cx.requests("v20", "GET", "/xapi/v1/ActiveCalls") == []
    # and with a rule, it is polled, then not again before its poll_seconds (2 s)
    rules(control, max_call_seconds=60)
    talking(fake3cx, 502, "102 Olena Koval", "101 Ivan Petrenko", T0)
    with time_machine.travel(T0, tick=False):
        first = control_run_once()
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        soon = control_run_once()
    assert first["devices"]["KyivPBX"]["dropped"] == 1
    assert soon["devices"] == {"KyivPBX": {"skipped": "not due yet"}}


def test_a_v18_pbx_counts_durations_by_the_polls_clock(site, second_device, v18_config,
                                                        fake3cx_v18):
    # given a v18 3CX (it gives no time of its own) with calls of 61 s and 59 s, at most 60 s
    lviv = PbxControl.objects.create(device=second_device, connector=v18_config,
                                     call_control={"max_call_seconds": 60})
    fake3cx_v18.active_calls.clear()
    talking(fake3cx_v18, 601, "201 Taras", "0441234567", T0 - timedelta(seconds=61))
    talking(fake3cx_v18, 602, "202 Oksana", "0441234567", T0 - timedelta(seconds=59))
    # when the control polls at T0
    counts = control_poll(lviv, now=T0)
    # then the longer call is dropped through the v18 API
    assert counts["dropped"] == 1 and sorted(fake3cx_v18.active_calls) == [602]
    assert actions() == [("601", ControlRule.MAX_CALL_SECONDS, True)]
    assert fake3cx_v18.requests("v18", "POST", "/api/activeCalls/drop")


# -- cost: a poll reads per poll, not per call -------------------------------------------

def _busy_pbx(site, fake, count: int) -> None:
    fake.active_calls.clear()
    for n in range(count):
        caller = "101 Ivan Petrenko" if n % 2 else "102 Olena Koval"
        talking(fake, 1000 + n, caller, f"90441234{n:03d}4321", T0 - timedelta(seconds=30))


def test_a_poll_runs_as_many_queries_for_50_calls_as_for_5(site, control, fake3cx):
    # given every rule on, codes dialled after the number, money on both accounts, and
    # calls that break none
    site.device.auth_code_position, site.device.auth_code_length = "after", 4
    site.device.save()
    AuthCode.objects.create(code="4321", subscriber=site.subscriber)
    for subscriber in (site.subscriber, site.colleague):
        payment_create(subscriber=subscriber, amount=Decimal("100.00"), day=date(2025, 3, 1))
    rules(control, max_call_cost="100.00", max_call_seconds=3600, min_balance="0.00",
          require_auth_code=True, blocked_destinations=["7"])
    _busy_pbx(site, fake3cx, 1)
    poll_at(control, T0)  # the tariff index compiled, as the loop's first poll does
    counted = []
    for count in (5, 50):
        _busy_pbx(site, fake3cx, count)
        control_memory_clear()  # every call seen for the first time
        with CaptureQueriesContext(connection) as queries:
            counts = poll_at(control, T0)
        assert counts["calls"] == count and counts["dropped"] == 0
        counted.append(len(queries))
    # then the same few queries whatever the number of calls: the device, its numbers,
    # routes and holidays, the plans, the balances, the codes, and the poll's own record
    assert counted[0] == counted[1] <= 10, counted


# -- events, the command and the loop ----------------------------------------------------

def test_pbx_control_once_prints_the_round_as_json(site, control, fake3cx):
    # given a call longer than the maximum
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval", T0 - timedelta(seconds=61))
    out = io.StringIO()
    # when `manage.py pbx_control --once` runs
    with time_machine.travel(T0, tick=False):
        call_command("pbx_control", "--once", stdout=out)
    # then it prints the round as JSON, keys sorted
    summary = json.loads(out.getvalue())
    assert summary["devices"] == {"KyivPBX": {"calls": 1, "dropped": 1, "ended": 0,
                                              "failed": 0, "refused": 0}}
    assert summary["pbx_changes"]["done"] == 0
    assert out.getvalue() == json.dumps(summary, sort_keys=True, indent=2) + "\n"


def test_pbx_control_refuses_a_device_it_does_not_control(control):
    with pytest.raises(CommandError, match="no device named 'Nowhere' has a PBX connector"):
        call_command("pbx_control", "--once", "--device", "Nowhere")


@pytest.fixture
def restore_signal_handlers():
    """`manage.py pbx_control` installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


# The loop closes stale connections each round, which a test wrapped in one transaction
# would not survive: these tests commit (transactional_db).

def test_pbx_control_runs_until_sigterm(transactional_db, site, control, fake3cx, monkeypatch,
                                        restore_signal_handlers):
    # given a call longer than the maximum, and SIGTERM coming after the first round
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval",
            datetime.now(UTC) - timedelta(seconds=61))
    real = control_module.control_run_once
    rounds = []

    def round_then_sigterm(**arguments):
        rounds.append(real(**arguments))
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(control_module, "control_run_once", round_then_sigterm)
    out = io.StringIO()
    # when `manage.py pbx_control` runs
    call_command("pbx_control", "--interval", "0.01", stdout=out)
    # then it made its round and stopped cleanly at SIGTERM
    assert len(rounds) == 1 and rounds[0]["devices"]["KyivPBX"]["dropped"] == 1
    assert out.getvalue().splitlines()[-1] == "call control stopped"


def test_the_loop_survives_a_failing_round(transactional_db, site, control, fake3cx, monkeypatch,
                                           caplog):
    # given a call longer than the maximum, and a first round that fails
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval",
            datetime.now(UTC) - timedelta(seconds=61))
    real, stop, rounds = control_module.control_run_once, threading.Event(), []

    def flaky(**arguments):
        rounds.append(arguments)
        if len(rounds) == 1:
            raise RuntimeError("something unforeseen")
        stop.set()
        return real(**arguments)

    monkeypatch.setattr(control_module, "control_run_once", flaky)
    # when the loop runs
    control_loop(stop, interval=0)
    # then the failure was logged and the next round dropped the call
    assert len(rounds) == 2
    assert "the round failed" in caplog.text and "something unforeseen" in caplog.text
    assert actions() == [("501", ControlRule.MAX_CALL_SECONDS, True)]


@pytest.mark.postgres
def test_the_loop_survives_its_database_connection_being_cut(postgres, transactional_db, site,
                                                             control, fake3cx, monkeypatch):
    # given a call longer than the maximum, and the database ending the loop's connection
    # before its first round
    rules(control, max_call_seconds=60)
    talking(fake3cx, 501, "101 Ivan Petrenko", "102 Olena Koval",
            datetime.now(UTC) - timedelta(seconds=61))
    real, stop, rounds = control_module.control_run_once, threading.Event(), []

    def cut_first(**arguments):
        if not rounds:
            killer = pg_connect()
            killer.autocommit = True
            with killer.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)",
                               [connection.connection.info.backend_pid])
            killer.close()
        else:
            stop.set()
        try:
            summary = real(**arguments)
        except Exception as exc:
            rounds.append(type(exc).__name__)
            raise
        rounds.append(summary["devices"]["KyivPBX"])
        return summary

    monkeypatch.setattr(control_module, "control_run_once", cut_first)
    # when the loop runs
    control_loop(stop, interval=0.01)
    # then the first round failed on the dead connection, and the second, on a new one,
    # dropped the call
    assert rounds == ["OperationalError", {"calls": 1, "dropped": 1, "ended": 0, "failed": 0,
                                           "refused": 0}]
    assert actions() == [("501", ControlRule.MAX_CALL_SECONDS, True)]


def test_the_loops_periodic_work_syncs_extensions_and_checks_limits_when_due(site, control):
    # given a controlled device whose extensions were never synced
    now = datetime(2025, 3, 13, 10, 0, tzinfo=UTC)
    # when the loop's periodic work runs, then again half a minute later
    first = control_periodic(now=now)
    again = control_periodic(now=now + timedelta(seconds=30))
    # then the first synced the extensions (the fake's four) and checked the limits, and the
    # second did nothing
    assert set(first) == {"pbx_sync", "pbx_data", "limits_enforce"}
    assert first["pbx_sync"]["KyivPBX"]["created"] + first["pbx_sync"]["KyivPBX"][
        "unchanged"] + first["pbx_sync"]["KyivPBX"]["updated"] == 4
    assert again == {}
    control.refresh_from_db()
    assert control.last_sync_at is not None
