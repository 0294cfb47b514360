"""R9.5: the shipped fraud_rules.py, each fraud indicator at its boundary, its switch, the
high-risk list's longest prefix, the holidays from host.holidays, the velocity rules (in the
manner of OpenSIPS' fraud_detection) with their memory kept bounded, and what main() does
with a host: alerts, one mail, closing the subscriber. A unit test of the script's own logic,
loaded from its file as the script host loads it."""
import ast
import importlib.util
import inspect
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

FRAUD_RULES_PY = Path(__file__).resolve().parents[2] / "scripts" / "shipped" / "fraud_rules.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location("shipped_fraud_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rules = _load(FRAUD_RULES_PY)

# A week of June 2024: the 19th is a Wednesday.
WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = (
    "2024-06-19", "2024-06-20", "2024-06-21", "2024-06-22", "2024-06-23")
NOON = f"{WEDNESDAY} 12:00:00"  # in working hours, on a working day


def row(call_id=7, *, at=NOON, seconds=60, calltype=5, normalized="442079460000",
        dialnumber="00442079460000", direction=0, subscriber_id=12, device_id=3, cost=None,
        currency="EUR", originator="101", utc=None):
    """One row of v_calls as host.call() returns it; `at` is the PBX's local time, and the
    UTC start is the same unless given."""
    local = datetime.fromisoformat(at)
    return {"id": call_id, "originator": originator, "dialnumber": dialnumber,
            "calldatetime": local, "callseconds": seconds, "calltype": calltype,
            "cost": cost, "currency": currency, "normalized": normalized,
            "direction": direction, "subscriber_id": subscriber_id, "device_id": device_id,
            "calldatetime_utc": local if utc is None else utc}


class RecordingHost:
    """The host API of docs/scripts.md, answering call() from a dict of rows by id and
    holidays() from a dict by (year, device), recording what the script asked of it."""

    closing = False

    def __init__(self, rows=(), *, holidays=None, fail_call=None, fail_mail=None,
                 fail_holidays=None, fail_close=None):
        self.rows = {r["id"]: r for r in rows}
        self.holiday_days = holidays or {}
        self.fail_call, self.fail_mail = fail_call, fail_mail
        self.fail_holidays, self.fail_close = fail_holidays, fail_close
        self.logged, self.mails, self.alerts = [], [], []
        self.holidays_asked, self.closed = [], []

    def log(self, text):
        self.logged.append(text)

    def send_mail(self, to, subject, body):
        if self.fail_mail:
            raise self.fail_mail
        self.mails.append((to, subject, body))

    def alert(self, level, reason, call_id=None, subscriber_id=None):
        assert level in ("warning", "critical")
        self.alerts.append((level, reason, call_id, subscriber_id))

    def call(self, id):
        if self.fail_call:
            raise self.fail_call
        return self.rows.get(id)

    def subscriber(self, id):
        return None

    def query(self, sql, params):
        raise AssertionError("fraud_rules reads its call with host.call()")

    def holidays(self, year, device_id):
        self.holidays_asked.append((year, device_id))
        if self.fail_holidays:
            raise self.fail_holidays
        return self.holiday_days.get((year, device_id), [])

    def close_subscriber(self, subscriber_id, reason):
        self.closed.append((subscriber_id, reason))
        if self.fail_close:
            raise self.fail_close

    def add(self, *calls):
        self.rows.update({r["id"]: r for r in calls})
        return self


def script_class():
    classes = [obj for _, obj in inspect.getmembers(rules, inspect.isclass)
               if obj.__module__ == rules.__name__ and callable(getattr(obj, "main", None))]
    assert len(classes) == 1
    return classes[0]


def started(host):
    scanner = script_class()()
    scanner.init(host)
    return scanner


def run(host, *call_ids, scanner=None, profile="KyivPBX"):
    """Init the script's one class as the host does (or go on with `scanner`) and run one
    call_processed event per id; the scanner, to go on with."""
    scanner = scanner or started(host)
    for call_id in call_ids or list(host.rows):
        scanner.main({"event": "call_processed", "profile": profile, "id": call_id})
    return scanner


def levels(host):
    return [level for level, *_ in host.alerts]


@pytest.fixture
def alone(monkeypatch):
    """Every indicator off; a test switches on the one it looks at."""
    for name in ("CHECK_WORKING_HOURS", "CHECK_WEEKENDS", "CHECK_HOLIDAYS", "CHECK_HIGH_RISK",
                 "CHECK_UNKNOWN_NUMBERS"):
        monkeypatch.setattr(rules, name, False)
    monkeypatch.setattr(rules, "MAX_CALL_COST", None)
    monkeypatch.setattr(rules, "VELOCITY_PROFILES", {})
    return monkeypatch


def velocity(monkeypatch, **rule):
    """One velocity rule, for any number and at any time unless the test says otherwise."""
    monkeypatch.setattr(rules, "VELOCITY_PROFILES",
                        {"default": [{"name": "test", "prefix": "", **rule}]})


# -- cost ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cost", "fires"), [
    pytest.param(Decimal("9.99"), False, id="below"),
    pytest.param(Decimal("10.00"), False, id="equal"),
    pytest.param(Decimal("10.01"), True, id="above"),
    pytest.param("10.01", True, id="above, as text"),
    pytest.param(None, False, id="not rated"),
])
def test_an_international_call_alerts_only_when_it_costs_more_than_the_limit(alone, cost, fires):
    # given a limit of 10 and an international call around it
    alone.setattr(rules, "MAX_CALL_COST", 10)
    host = RecordingHost([row(cost=cost)])
    # when the script runs for it
    run(host)
    # then only a cost strictly above the limit alerts, at the cost indicator's level
    assert levels(host) == (["critical"] if fires else [])
    if fires:
        assert "(costs 10.01 EUR, above the limit of 10)" in host.alerts[0][1]


def test_a_limit_per_currency_judges_each_call_in_its_own_currency(alone):
    # given a limit in euros only, a call of 10.01 EUR and one of 5000 UAH
    alone.setattr(rules, "MAX_CALL_COST", {"EUR": 10})
    host = RecordingHost([row(1, cost=Decimal("10.01")),
                          row(2, cost=Decimal("5000"), currency="UAH")])
    # when the script runs for both
    run(host)
    # then only the euro call is judged and alerts
    assert [call_id for *_, call_id, _ in host.alerts] == [1]


def test_without_a_limit_the_cost_does_not_alert(alone):
    # given the shipped setting (no limit) and a very expensive call
    assert rules.MAX_CALL_COST is None
    host = RecordingHost([row(cost=Decimal("100000"))])
    # when the script runs
    run(host)
    # then nothing alerts
    assert host.alerts == [] and host.mails == []


# -- working hours, weekends, holidays -----------------------------------------------------

@pytest.mark.parametrize(("time_of_day", "fires"), [
    pytest.param("07:59:59", True, id="07:59:59"),
    pytest.param("08:00:00", False, id="08:00:00, work begins"),
    pytest.param("19:00:00", False, id="19:00:00, work ends"),
    pytest.param("19:00:01", True, id="19:00:01"),
])
def test_outside_working_hours_is_strictly_before_or_after_them(alone, time_of_day, fires):
    # given the working-hours indicator alone and an international call on a Wednesday
    alone.setattr(rules, "CHECK_WORKING_HOURS", True)
    host = RecordingHost([row(at=f"{WEDNESDAY} {time_of_day}")])
    # when the script runs
    run(host)
    # then the bounds themselves are working hours, as in fraud.py
    assert levels(host) == (["warning"] if fires else [])
    if fires:
        assert host.alerts[0][1].endswith("(outside working hours, 08:00 to 19:00)")


def test_working_hours_switched_off_do_not_alert(alone):
    # given every indicator off and an international call at 03:00
    host = RecordingHost([row(at=f"{WEDNESDAY} 03:00:00")])
    # when the script runs
    run(host)
    # then nothing alerts
    assert host.alerts == []


@pytest.mark.parametrize(("weekend", "day", "fires"), [
    pytest.param("Sat-Sun", FRIDAY, False, id="Friday"),
    pytest.param("Sat-Sun", SATURDAY, True, id="Saturday"),
    pytest.param("Sat-Sun", SUNDAY, True, id="Sunday"),
    pytest.param("Fri-Sat", FRIDAY, True, id="a Friday-Saturday weekend: Friday"),
    pytest.param("Fri-Sat", SUNDAY, False, id="a Friday-Saturday weekend: Sunday"),
])
def test_a_call_on_a_weekend_day_alerts_at_any_hour(alone, weekend, day, fires):
    # given the weekend indicator alone, and an international call at noon
    alone.setattr(rules, "CHECK_WEEKENDS", True)
    alone.setattr(rules, "WEEKEND_DAYS", weekend)
    host = RecordingHost([row(at=f"{day} 12:00:00")])
    # when the script runs
    run(host)
    # then it alerts on the weekend's days only
    assert levels(host) == (["warning"] if fires else [])


def test_a_call_on_a_holiday_of_the_node_alerts_and_the_day_after_does_not(alone):
    # given the holiday indicator alone, and the host's calendar with Thursday a holiday
    alone.setattr(rules, "CHECK_HOLIDAYS", True)
    host = RecordingHost([row(1, at=f"{THURSDAY} 12:00:00"), row(2, at=f"{FRIDAY} 12:00:00")],
                         holidays={(2024, 3): [date(2024, 6, 20)]})
    # when the script runs for a call on that day and one on the next
    run(host)
    # then the holiday's call alerts, the other does not
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [("warning", 1)]
    assert host.alerts[0][1].endswith("(on a public holiday of the PBX's node)")


def test_holidays_are_asked_of_the_host_once_per_device_and_year(alone):
    # given the holiday indicator, and calls of two devices over two years
    alone.setattr(rules, "CHECK_HOLIDAYS", True)
    calls = [row(n, device_id=device, at=at) for n, (device, at) in enumerate([
        (3, "2024-06-20 12:00:00"), (3, "2024-06-21 12:00:00"), (4, "2024-06-20 12:00:00"),
        (3, "2025-01-02 12:00:00"), (4, "2024-12-31 12:00:00"), (3, "2025-01-03 12:00:00"),
        (3, "2024-06-22 12:00:00")], start=1)]
    host = RecordingHost(calls, holidays={(2024, 3): ["2024-06-20"], (2025, 3): []})
    # when the script runs for all of them in one process
    run(host)
    # then the host was asked once per device-year, and its answer (ISO text too) served
    assert host.holidays_asked == [(2024, 3), (2024, 4), (2025, 3)]
    assert [call_id for *_, call_id, _ in host.alerts] == [1]


def test_holidays_are_asked_again_once_the_cache_has_expired(alone):
    # given holidays kept no time at all
    alone.setattr(rules, "CHECK_HOLIDAYS", True)
    alone.setattr(rules, "HOLIDAYS_CACHE_S", 0)
    host = RecordingHost([row(1), row(2)])
    # when two calls are judged
    run(host)
    # then each asked the host
    assert host.holidays_asked == [(2024, 3), (2024, 3)]


def test_a_failing_holidays_call_is_logged_not_repeated_at_once_and_the_rest_goes_on(alone):
    # given a host whose holidays() fails, with the weekend indicator on too
    alone.setattr(rules, "CHECK_HOLIDAYS", True)
    alone.setattr(rules, "CHECK_WEEKENDS", True)
    host = RecordingHost([row(1, at=f"{SUNDAY} 12:00:00"), row(2, at=f"{SUNDAY} 13:00:00")],
                         fail_holidays=RuntimeError("ValueError: no device 3"))
    # when two calls are judged
    run(host)
    # then the failure was logged once, not asked again right away, and the weekend alerted
    failures = [line for line in host.logged if line.startswith("host.holidays(2024, 3)")]
    assert len(failures) == 1 and "no device 3" in failures[0]
    assert host.holidays_asked == [(2024, 3)]
    assert levels(host) == ["warning", "warning"]
    assert not any(line.startswith("Error running script") for line in host.logged)


def test_holidays_switched_off_are_never_asked(alone):
    # given every indicator off
    host = RecordingHost([row(at=f"{THURSDAY} 12:00:00")],
                         holidays={(2024, 3): [date(2024, 6, 20)]})
    # when the script runs
    run(host)
    # then the host was not asked for holidays, and nothing alerts
    assert host.holidays_asked == [] and host.alerts == []


# -- high-risk destinations ----------------------------------------------------------------

def test_a_high_risk_call_is_named_as_in_the_brief(alone):
    # given the high-risk indicator, the working-hours one, and a Sunday night call to +882
    alone.setattr(rules, "CHECK_HIGH_RISK", True)
    host = RecordingHost([row(4711, at=f"{SUNDAY} 02:14:00", normalized="88216123456",
                              dialnumber="0088216123456")])
    # when the script runs
    run(host)
    # then the reason names the call, the number with its prefix and where the entry is from
    assert host.alerts == [(
        "warning", "call 4711: international call from 101 to +882 16123456 (high-risk: "
        "international networks +882) at 02:14 on Sunday 2024-06-23", 4711, 12)]


@pytest.mark.parametrize(("normalized", "expected"), [
    pytest.param("8821612345", "Thuraya +88216", id="the longest prefix"),
    pytest.param("8829912345", "international networks +882", id="a shorter one"),
    pytest.param("8812345678", "eight-eight +88", id="the shortest one"),
    pytest.param("8712345678", None, id="none"),
])
def test_the_longest_matching_prefix_names_the_destination(alone, normalized, expected):
    # given a list with nested prefixes
    alone.setattr(rules, "CHECK_HIGH_RISK", True)
    alone.setattr(rules, "HIGH_RISK_PREFIXES", {"88": "eight-eight",
                                                "882": "international networks",
                                                "88216": "Thuraya"})
    host = RecordingHost([row(normalized=normalized)])
    # when the script runs
    run(host)
    # then the longest prefix that begins the number is the one named
    if expected is None:
        assert host.alerts == []
    else:
        assert f"(high-risk: {expected})" in host.alerts[0][1]


@pytest.mark.parametrize(("normalized", "expected"), [
    pytest.param("5371234567", "Cuba +53", id="Cuba, CFCA"),
    pytest.param("37167123456", "Latvia +371", id="Latvia, CFCA"),
    pytest.param("97912345678", "international premium rate +979", id="ITU +979"),
    pytest.param("881631234567", "satellite networks +881", id="Iridium, +881"),
    pytest.param("88351234567", "international networks +883", id="+883"),
    pytest.param("9941234567", "Azerbaijan +994", id="Azerbaijan, US carriers"),
    pytest.param("442079460000", None, id="London"),
    pytest.param("4930123456", None, id="Berlin"),
])
def test_the_shipped_list_flags_its_groups_and_not_ordinary_destinations(
        alone, normalized, expected):
    # given the shipped high-risk list
    alone.setattr(rules, "CHECK_HIGH_RISK", True)
    host = RecordingHost([row(normalized=normalized)])
    # when an international call to the number is judged
    run(host)
    # then the listed destinations alert, London and Berlin do not
    assert [reason.split("(high-risk: ")[1].split(")")[0] for _, reason, *_ in host.alerts] \
        == ([expected] if expected else [])


@pytest.mark.parametrize("calltype", [
    pytest.param(4, id="long-distance"),
    pytest.param(3, id="local"),
    pytest.param(6, id="mobile"),
])
def test_a_national_call_is_not_flagged_even_in_a_listed_country(alone, calltype):
    # given a PBX in Latvia (+371, on the list) and a national call there
    alone.setattr(rules, "CHECK_HIGH_RISK", True)
    host = RecordingHost([row(calltype=calltype, normalized="37167123456",
                              dialnumber="67123456")])
    # when the script runs
    run(host)
    # then it is not flagged: only international calls are judged by destination
    assert host.alerts == []


@pytest.mark.parametrize(("dialnumber", "expected"), [
    pytest.param("+979 1 2345 6789", "international premium rate +979", id="+979"),
    pytest.param("0053*71234567", "Cuba +53", id="00 and a star"),
    pytest.param("12345", None, id="no listed prefix"),
])
def test_without_a_normalized_number_the_digits_of_dialnumber_are_matched(
        alone, dialnumber, expected):
    # given an international call stored without a normalized number
    alone.setattr(rules, "CHECK_HIGH_RISK", True)
    host = RecordingHost([row(normalized="", dialnumber=dialnumber)])
    # when the script runs
    run(host)
    # then the digits of what was dialled, without "+" or "00", are matched
    assert [reason.split("(high-risk: ")[1].split(")")[0] for _, reason, *_ in host.alerts] \
        == ([expected] if expected else [])


def test_high_risk_switched_off_does_not_alert(alone):
    # given every indicator off and a call to +882
    host = RecordingHost([row(normalized="88216123456")])
    # when the script runs
    run(host)
    # then nothing alerts
    assert host.alerts == []


# -- unknown numbers, direction ------------------------------------------------------------

@pytest.mark.parametrize(("subscriber_id", "calltype", "fires"), [
    pytest.param(None, 3, True, id="unknown, a local call"),
    pytest.param(None, 5, True, id="unknown, an international call"),
    pytest.param(12, 5, False, id="a known subscriber"),
])
def test_an_outgoing_call_from_a_number_unknown_to_the_system_alerts(
        alone, subscriber_id, calltype, fires):
    # given the unknown-number indicator alone
    alone.setattr(rules, "CHECK_UNKNOWN_NUMBERS", True)
    host = RecordingHost([row(subscriber_id=subscriber_id, calltype=calltype,
                              originator="5559")])
    # when the script runs
    run(host)
    # then only a call whose originator no subscriber holds alerts, of any call type
    assert levels(host) == (["warning"] if fires else [])
    if fires:
        assert host.alerts[0][1].endswith("(the calling number is unknown to the system)")
        assert host.alerts[0][3] is None


@pytest.mark.parametrize("direction", [pytest.param(1, id="incoming"),
                                       pytest.param(2, id="internal")])
def test_only_outgoing_calls_are_judged(direction):
    # given every shipped indicator on, and a non-outgoing call that has every sign
    host = RecordingHost([row(direction=direction, at=f"{SUNDAY} 02:00:00",
                              normalized="88216123456", subscriber_id=None)])
    # when the script runs
    run(host)
    # then nothing alerts and no mail leaves
    assert host.alerts == [] and host.mails == []


def test_unknown_numbers_switched_off_do_not_alert(alone):
    # given every indicator off and a call from an unknown number
    host = RecordingHost([row(subscriber_id=None)])
    # when the script runs
    run(host)
    # then nothing alerts
    assert host.alerts == []


# -- velocity rules ------------------------------------------------------------------------

def burst(start: str, count: int, step_s: int, *, first_id=1, **fields):
    """`count` calls from one originator, `step_s` seconds apart from `start`."""
    begin = datetime.fromisoformat(start)
    return [row(first_id + n, at=(begin + timedelta(seconds=n * step_s)).isoformat(" "),
                **fields) for n in range(count)]


def test_calls_per_minute_warn_then_go_critical(alone):
    # given a rule of 3 (warning) and 5 (critical) calls per minute
    velocity(alone, cpm=(3, 5))
    host = RecordingHost(burst(NOON, 5, 10))
    # when five calls start 10 s apart
    run(host)
    # then the third warns, the fourth still warns, the fifth is critical
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 3), ("warning", 4), ("critical", 5)]
    assert "velocity rule 'test': 5 calls in a minute; warning at 3, critical at 5" in \
        host.alerts[-1][1]


def test_a_call_started_a_minute_or_more_before_is_not_in_the_minute(alone):
    # given a rule of 2 calls per minute, and calls 60 s apart, then 59 s apart
    velocity(alone, cpm=(2, None))
    host = RecordingHost(burst(NOON, 2, 60) + burst(f"{WEDNESDAY} 13:00:00", 2, 59, first_id=3))
    # when the script runs
    run(host)
    # then only the pair 59 s apart makes 2 calls in a minute
    assert [call_id for *_, call_id, _ in host.alerts] == [4]


def test_concurrent_calls_warn_then_go_critical_and_back_to_back_calls_do_not_count(alone):
    # given a rule of 2 and 3 concurrent calls, three overlapping calls, then two back to back
    velocity(alone, concurrent=(2, 3))
    host = RecordingHost([
        row(1, at=f"{WEDNESDAY} 12:00:00", seconds=600),
        row(2, at=f"{WEDNESDAY} 12:01:40", seconds=600),
        row(3, at=f"{WEDNESDAY} 12:03:20", seconds=60),
        row(4, at=f"{WEDNESDAY} 14:00:00", seconds=60),
        row(5, at=f"{WEDNESDAY} 14:01:00", seconds=60),
    ])
    # when the script runs
    run(host)
    # then the second overlapping call warns, the third is critical; back to back is not
    # concurrent
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 2), ("critical", 3)]
    assert "3 calls at the same time" in host.alerts[-1][1]


def test_a_call_stored_after_the_one_it_overlapped_counts_as_concurrent(alone):
    # given a rule of 2 concurrent calls, and a long call stored after a later short one
    velocity(alone, concurrent=(2, None))
    host = RecordingHost([row(1, at=f"{WEDNESDAY} 12:05:00", seconds=60),
                          row(2, at=f"{WEDNESDAY} 12:00:00", seconds=900)])
    # when the script runs in the order they were stored
    run(host, 1, 2)
    # then the long one overlaps the short one held in memory
    assert [call_id for *_, call_id, _ in host.alerts] == [2]


def test_sequential_calls_to_the_same_number_warn_then_go_critical_and_another_resets(alone):
    # given a rule of 3 and 5 calls in a row to the same number
    velocity(alone, sequential=(3, 5), sequential_by="number")
    same = burst(NOON, 5, 120)
    host = RecordingHost(same + [
        row(6, at=f"{WEDNESDAY} 12:12:00", normalized="4930123456"),
        row(7, at=f"{WEDNESDAY} 12:14:00"), row(8, at=f"{WEDNESDAY} 12:16:00")])
    # when five calls to one number, one elsewhere and two to the first number are judged
    run(host)
    # then the 3rd and 4th warn, the 5th is critical, and after the other number the run
    # starts again
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 3), ("warning", 4), ("critical", 5)]
    assert "5 calls in a row to the same number" in host.alerts[-1][1]


def test_sequential_calls_to_the_same_prefix_of_a_rule_count_across_numbers(alone):
    # given a rule for +44 and +49 counting calls in a row to the same prefix
    velocity(alone, prefix=["44", "49"], sequential=(2, 3))
    host = RecordingHost([row(1, normalized="442079460000"),
                          row(2, at=f"{WEDNESDAY} 12:02:00", normalized="442071111111"),
                          row(3, at=f"{WEDNESDAY} 12:04:00", normalized="4930123456"),
                          row(4, at=f"{WEDNESDAY} 12:06:00", normalized="4940123456"),
                          row(5, at=f"{WEDNESDAY} 12:08:00", normalized="4989123456")])
    # when the script runs
    run(host)
    # then two numbers of +44 make a run; +49 starts another, which goes critical at three
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 2), ("warning", 4), ("critical", 5)]
    assert "3 calls in a row to +49" in host.alerts[-1][1]


def test_total_calls_in_the_window_warn_then_go_critical_and_older_calls_drop_out(alone):
    # given a rule of 4 and 6 calls in the window of an hour, and calls 10 minutes apart
    velocity(alone, total=(4, 6))
    host = RecordingHost(burst(NOON, 7, 600))
    # when seven calls are judged (the 7th an hour after the 1st)
    run(host)
    # then the 4th and 5th warn, the 6th is critical, and the 7th, with the 1st out of the
    # window, is back at 6: critical
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 4), ("warning", 5), ("critical", 6), ("critical", 7)]
    assert "6 calls in 60 minutes" in host.alerts[-1][1]


@pytest.mark.parametrize(("seconds", "expected"), [
    pytest.param(599, [], id="599 s"),
    pytest.param(600, ["warning"], id="600 s, the warning threshold"),
    pytest.param(1199, ["warning"], id="1199 s"),
    pytest.param(1200, ["critical"], id="1200 s, the critical threshold"),
])
def test_the_duration_of_a_call_warns_then_goes_critical_at_its_thresholds(
        alone, seconds, expected):
    # given a rule of 600 s and 1200 s
    velocity(alone, duration=(600, 1200))
    host = RecordingHost([row(seconds=seconds)])
    # when the call is judged
    run(host)
    # then a threshold reached is a threshold crossed, as in OpenSIPS (>=)
    assert levels(host) == expected


@pytest.mark.parametrize(("at", "fires"), [
    pytest.param(f"{WEDNESDAY} 12:00:00", False, id="Wednesday noon"),
    pytest.param(f"{WEDNESDAY} 19:00:00", True, id="Wednesday 19:00, the start"),
    pytest.param(f"{WEDNESDAY} 23:00:00", True, id="Wednesday 23:00"),
    pytest.param(f"{THURSDAY} 07:59:00", True, id="Thursday 07:59"),
    pytest.param(f"{THURSDAY} 08:00:00", False, id="Thursday 08:00, the end"),
    pytest.param(f"{SATURDAY} 23:00:00", False, id="Saturday 23:00, not a rule day"),
])
def test_a_rule_restricted_to_hours_and_days_does_not_fire_outside_them(alone, at, fires):
    # given a night rule on working days, warning at the first long call
    velocity(alone, start="19:00", end="08:00", days="Mon-Fri", duration=(60, None))
    host = RecordingHost([row(at=at, seconds=3600)])
    # when a long call is judged
    run(host)
    # then it fires only inside the rule's hours and days
    assert levels(host) == (["warning"] if fires else [])


def test_the_rule_with_the_longest_prefix_applies_and_keeps_its_own_counters(alone):
    # given a rule for any number and one for +882, each warning at 2 calls a minute
    alone.setattr(rules, "VELOCITY_PROFILES", {"default": [
        {"name": "any", "prefix": "", "cpm": (2, None)},
        {"name": "satellite", "prefix": "882", "cpm": (2, None)}]})
    host = RecordingHost([row(1, normalized="88216123456"),
                          row(2, at=f"{WEDNESDAY} 12:00:10"),
                          row(3, at=f"{WEDNESDAY} 12:00:20", normalized="88216123456")])
    # when a call to +882, one to London and one more to +882 start in one minute
    run(host)
    # then only the second +882 call makes 2 calls a minute, under the +882 rule
    assert [(call_id, "'satellite'" in reason) for _, reason, call_id, _ in host.alerts] == [
        (3, True)]


def test_a_rule_limited_to_call_types_ignores_other_calls(alone):
    # given the shipped high-risk rule (international calls only) and national calls in Latvia
    alone.setattr(rules, "VELOCITY_PROFILES", {"default": [
        {"name": "high-risk", "prefix": ["371"], "calltypes": (5,), "cpm": (2, None)}]})
    national = burst(NOON, 3, 5, calltype=4, normalized="37167123456")
    host = RecordingHost(national + burst(NOON, 2, 5, first_id=4, normalized="37167123456"))
    # when three national and two international calls start within seconds
    run(host)
    # then only the second international call alerts
    assert [call_id for *_, call_id, _ in host.alerts] == [5]


def test_the_counters_are_per_originator_and_per_pbx(alone):
    # given a rule of 2 calls a minute, and three calls from 101: on two PBXs, and from 102
    velocity(alone, cpm=(2, None))
    host = RecordingHost([row(1), row(2, device_id=4), row(3, originator="102"),
                          row(4, at=f"{WEDNESDAY} 12:00:30")])
    # when the script runs
    run(host)
    # then only 101's second call on the same PBX alerts
    assert [call_id for *_, call_id, _ in host.alerts] == [4]


def test_an_observer_profile_may_use_a_velocity_profile_of_its_own(alone):
    # given a strict profile for one observer profile, and the default for the others
    alone.setattr(rules, "VELOCITY_PROFILES", {
        "default": [{"name": "lenient", "prefix": "", "duration": (7200, None)}],
        "strict": [{"name": "strict", "prefix": "", "duration": (60, None)}]})
    alone.setattr(rules, "VELOCITY_PROFILE_FOR", {"NightShift": "strict"})
    host = RecordingHost([row(1, seconds=600)])
    # when the same call is judged for two observer profiles
    run(host, 1, profile="KyivPBX")
    run(host, 1, profile="NightShift")
    # then only the strict profile alerts
    assert len(host.alerts) == 1 and "'strict'" in host.alerts[0][1]


@pytest.mark.parametrize(("rule", "message"), [
    pytest.param({"cpm": 3}, "cpm is a pair", id="a threshold not a pair"),
    pytest.param({"days": "Mon-Fry"}, "days 'Mon-Fry'", id="a day misspelt"),
    pytest.param({"start": "7 pm"}, "start and end are 'HH:MM'", id="an hour misspelt"),
    pytest.param({"prefix": "+44 20"}, "a prefix is digits", id="a prefix with a space"),
    pytest.param({"thresholds": 1}, "unknown keys ['thresholds']", id="an unknown key"),
])
def test_a_mistake_in_a_rule_stops_the_script_at_loading_naming_the_rule(
        monkeypatch, rule, message):
    # given a rule written wrong
    velocity(monkeypatch, **rule)
    # when the script is loaded
    with pytest.raises(ValueError, match="rule 'test'") as raised:
        started(RecordingHost())
    # then init() says which rule and what is wrong
    assert message in str(raised.value)


def test_the_shipped_rules_load_and_a_busy_but_normal_day_does_not_alert():
    # given the shipped constants, and a known subscriber calling London numbers every 5
    # minutes for two hours
    host = RecordingHost([dict(call, normalized=f"44207946{call['id']:04d}")
                          for call in burst(NOON, 24, 300, seconds=120)])
    scanner = started(host)
    # when the calls are judged
    run(host, scanner=scanner)
    # then the shipped rules see nothing wrong
    assert [rule.name for rule in scanner.velocity["default"]] == [
        "high-risk destinations", "any destination"]
    assert host.alerts == [] and host.mails == []


# -- memory --------------------------------------------------------------------------------

def test_memory_stays_bounded_by_the_window_after_hours_of_calls(alone):
    # given a velocity rule, and three extensions each calling every minute for ten hours
    velocity(alone, cpm=(100, None))
    host = RecordingHost()
    scanner = started(host)
    begin = datetime.fromisoformat(f"{WEDNESDAY} 08:00:00")
    call_id = 0
    for minute in range(600):
        for extension in ("101", "102", "103"):
            call_id += 1
            host.add(row(call_id, originator=extension, seconds=30,
                         at=(begin + timedelta(minutes=minute)).isoformat(" ")))
            run(host, call_id, scanner=scanner)
    # then memory holds the last hour of each extension, not ten hours
    assert len(scanner.originators) == 3
    assert all(len(state.calls) <= 61 for state in scanner.originators.values())
    # and when other extensions call two hours later, the idle ones are forgotten
    later = begin + timedelta(hours=12)
    for n, extension in enumerate(("201", "202")):
        host.add(row(10_000 + n, originator=extension, at=later.isoformat(" ")))
        run(host, 10_000 + n, scanner=scanner)
    assert sorted(number for _, number in scanner.originators) == ["201", "202"]


def test_memory_is_bounded_whatever_the_traffic(alone):
    # given small bounds, and a storm of calls from 500 numbers within a minute
    velocity(alone, cpm=(1000, None))
    alone.setattr(rules, "MAX_ORIGINATORS", 50)
    alone.setattr(rules, "MAX_CALLS_PER_ORIGINATOR", 20)
    host = RecordingHost()
    scanner = started(host)
    for n in range(500):
        host.add(row(n, originator=f"9{n:04d}", subscriber_id=None))
        run(host, n, scanner=scanner)
    for n in range(500, 600):
        host.add(row(n, originator="101"))
        run(host, n, scanner=scanner)
    # then at most 50 originators and 20 calls of each are held
    assert len(scanner.originators) == 50
    assert max(len(state.calls) for state in scanner.originators.values()) == 20


def test_periodic_forgets_what_left_the_window_logs_memory_and_keeps_the_rest(alone):
    # given a rule of 2 calls a minute and a call judged
    velocity(alone, cpm=(2, None))
    host = RecordingHost([row(1), row(2, at=f"{WEDNESDAY} 12:00:30")])
    scanner = run(host, 1)
    # when the periodic binding of the same process runs, then the second call comes
    scanner.main({"event": "periodic", "profile": "KyivPBX"})
    run(host, 2, scanner=scanner)
    # then periodic logged what memory holds, and the first call still counted
    assert "fraud_rules: 1 originators and 1 calls in the velocity window" in host.logged[0]
    assert [call_id for *_, call_id, _ in host.alerts] == [2]


# -- alerts, mail, closing -----------------------------------------------------------------

def test_one_mail_per_alerting_call_lists_every_reason_with_fraud_py_first_sentence():
    # given the shipped constants and a call with several signs, then a harmless one
    host = RecordingHost([row(4711, at=f"{SUNDAY} 02:14:00", seconds=600,
                              normalized="88216123456", dialnumber="0088216123456",
                              subscriber_id=None),
                          row(4712)])
    # when the script runs for both
    run(host)
    # then one mail, to the default recipient, lists the call's alerts; the other is quiet
    assert len(host.mails) == 1
    to, subject, body = host.mails[0]
    assert (to, subject) == ("", "Fraud Detection system")
    first, blank, *lines = body.splitlines()
    assert first == ("Suspicious call detected. ID=4711 CallDateTime=2024-06-23 02:14:00 "
                     "Call duration=600 Originator=101 Dialnumber=0088216123456")
    assert blank == ""
    assert lines == [f"{level}: {reason}" for level, reason, *_ in host.alerts]
    assert len(lines) == 4  # working hours, weekend, high-risk, unknown number
    assert {(call_id, subscriber_id) for *_, call_id, subscriber_id in host.alerts} == {
        (4711, None)}


def test_the_mail_goes_to_the_edited_recipient_and_lists_critical_first(alone):
    # given a recipient of one's own, and a call with a warning and a critical alert
    alone.setattr(rules, "MAIL_TO", "security@example.com")
    alone.setattr(rules, "SUBJECT", "Получен вызов с признаками фрода")
    alone.setattr(rules, "CHECK_WORKING_HOURS", True)
    alone.setattr(rules, "MAX_CALL_COST", 10)
    host = RecordingHost([row(at=f"{WEDNESDAY} 23:00:00", cost=Decimal("50"))])
    # when the script runs
    run(host)
    # then the mail goes there, the critical reason first
    (to, subject, body), = host.mails
    assert (to, subject) == ("security@example.com", "Получен вызов с признаками фрода")
    assert [line.split(":")[0] for line in body.splitlines()[2:]] == ["critical", "warning"]


def test_a_mail_that_cannot_be_sent_is_logged_after_the_alerts(alone):
    # given a host whose mail fails
    alone.setattr(rules, "CHECK_UNKNOWN_NUMBERS", True)
    host = RecordingHost([row(subscriber_id=None)], fail_mail=RuntimeError("no recipient"))
    # when the script runs for an alerting call
    run(host)
    # then the alert was raised and the mail's failure logged, not raised
    assert levels(host) == ["warning"]
    assert any("was not sent: RuntimeError: no recipient" in line for line in host.logged)


def critical_call(**fields):
    return row(cost=Decimal("50"), **fields)


def test_closing_is_off_by_default_even_for_a_critical_alert(alone):
    # given the shipped CLOSE_ON_CRITICAL and a critical alert
    assert rules.CLOSE_ON_CRITICAL is False
    alone.setattr(rules, "MAX_CALL_COST", 10)
    host = RecordingHost([critical_call()])
    # when the script runs
    run(host)
    # then the subscriber is not closed
    assert levels(host) == ["critical"] and host.closed == []


def test_with_the_switch_on_a_critical_alert_closes_the_subscriber_and_says_so(alone):
    # given the switch on and a critical alert
    alone.setattr(rules, "CLOSE_ON_CRITICAL", True)
    alone.setattr(rules, "MAX_CALL_COST", 10)
    host = RecordingHost([critical_call()])
    # when the script runs
    run(host)
    # then the subscriber was closed once, with the critical reason, and the mail says so
    assert host.closed == [(12, host.alerts[0][1])]
    assert host.mails[0][2].endswith("Outgoing calls of subscriber 12 closed on the PBX")


def test_with_the_switch_on_warnings_alone_do_not_close(alone):
    # given the switch on and a call with warnings only
    alone.setattr(rules, "CLOSE_ON_CRITICAL", True)
    alone.setattr(rules, "CHECK_WORKING_HOURS", True)
    alone.setattr(rules, "CHECK_HIGH_RISK", True)
    host = RecordingHost([row(at=f"{WEDNESDAY} 23:00:00", normalized="88216123456")])
    # when the script runs
    run(host)
    # then nobody is closed
    assert levels(host) == ["warning", "warning"] and host.closed == []


def test_a_close_that_fails_is_logged_and_mailed_never_raised(alone):
    # given the switch on and a host without the restrictions module
    alone.setattr(rules, "CLOSE_ON_CRITICAL", True)
    alone.setattr(rules, "MAX_CALL_COST", 10)
    error = RuntimeError("ValueError: closing a subscriber on the PBX needs the restrictions "
                         "module, which is not built yet (R8)")
    host = RecordingHost([critical_call()], fail_close=error)
    # when the script runs
    run(host)
    # then the failure is logged and in the mail, and nothing else went wrong
    said = ("Outgoing calls of subscriber 12 could not be closed: RuntimeError: ValueError: "
            "closing a subscriber on the PBX needs the restrictions module")
    assert any(line.startswith(said) for line in host.logged)
    assert said in host.mails[0][2]
    assert not any(line.startswith("Error running script") for line in host.logged)


def test_a_critical_alert_of_an_unknown_number_has_nobody_to_close(alone):
    # given the switch on and a critical alert on a call from an unknown number
    alone.setattr(rules, "CLOSE_ON_CRITICAL", True)
    alone.setattr(rules, "MAX_CALL_COST", 10)
    host = RecordingHost([critical_call(subscriber_id=None)])
    # when the script runs
    run(host)
    # then the host is not asked to close anyone, and the log says why
    assert host.closed == []
    assert "Outgoing calls not closed: the calling number is unknown to the system" in \
        host.logged


# -- main() and the host -------------------------------------------------------------------

def test_a_failing_host_call_is_logged_with_its_traceback_and_not_raised():
    # given a host whose call() fails
    host = RecordingHost(fail_call=RuntimeError("the database is away"))
    # when the script runs for a call
    run(host, 7)
    # then main() returned, having logged the error with its traceback
    assert len(host.logged) == 1
    assert host.logged[0].startswith("Error running script: Traceback (most recent call last):")
    assert "the database is away" in host.logged[0]
    assert host.alerts == [] and host.mails == []


def test_a_call_that_is_gone_is_passed_over():
    # given a call no longer in v_calls
    host = RecordingHost()
    # when the script runs for it
    run(host, 7)
    # then it says so and does nothing else
    assert host.logged == ["Call 7 is not in v_calls any more: passed over"]
    assert host.alerts == [] and host.mails == []


def test_a_row_it_cannot_read_is_logged_not_raised():
    # given a call whose start is no date
    host = RecordingHost([dict(row(), calldatetime="yesterday")])
    # when the script runs
    run(host)
    # then the error is logged with its traceback
    assert host.logged[0].startswith("Error running script: Traceback")
    assert "Invalid isoformat string" in host.logged[0]


def test_times_handed_over_as_text_or_with_a_zone_are_read_alike(alone):
    # given a rule of 2 calls a minute, and two calls whose times came as ISO text and as an
    # aware UTC start (PostgreSQL's calldatetime_utc)
    velocity(alone, cpm=(2, None))
    alone.setattr(rules, "CHECK_WEEKENDS", True)
    first = dict(row(1, at=f"{SATURDAY} 12:00:00"), calldatetime="2024-06-22T12:00:00",
                 calldatetime_utc="2024-06-22T09:00:00")
    second = row(2, at=f"{SATURDAY} 12:00:20",
                 utc=datetime(2024, 6, 22, 9, 0, 20, tzinfo=UTC))
    host = RecordingHost([first, second])
    # when the script runs
    run(host)
    # then both are Saturday calls, 20 s apart
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 1), ("warning", 2), ("warning", 2)]


def test_the_file_is_one_class_on_the_standard_library_alone_with_its_switches():
    # given the shipped file
    tree = ast.parse(FRAUD_RULES_PY.read_text(encoding="utf-8"))
    # when its imports and its class are looked at
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    cls = script_class()
    # then it imports only the standard library, has one class with init() and main(), and
    # ships every indicator on but cost and closing
    assert imported and imported <= set(sys.stdlib_module_names)
    assert callable(cls.init) and callable(cls.main)
    assert (rules.CHECK_WORKING_HOURS, rules.CHECK_WEEKENDS, rules.CHECK_HOLIDAYS,
            rules.CHECK_HIGH_RISK, rules.CHECK_UNKNOWN_NUMBERS) == (True,) * 5
    assert (rules.MAX_CALL_COST, rules.CLOSE_ON_CRITICAL, rules.MAIL_TO) == (None, False, "")
    assert {"53", "979", "881", "882", "883"} <= set(rules.HIGH_RISK_PREFIXES)
