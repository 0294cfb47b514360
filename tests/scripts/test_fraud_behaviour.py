"""R9.5: the shipped fraud_behaviour.py, the behaviour model: a call compared with the usual
behaviour of its subscriber, its group and the company. Unit tests of the model (driven
without a host) and of the script's class with a RecordingHost, loaded from its file as the
script host loads it; then the evaluation on 60 days of generated traffic with fraud
injected (tests/scripts/traffic.py): `pytest -s` prints its figures."""
import ast
import bisect
import importlib.util
import inspect
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.scripts import traffic

SCRIPT_PY = Path(__file__).resolve().parents[2] / "scripts" / "shipped" / "fraud_behaviour.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location("shipped_fraud_behaviour", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


behaviour = _load(SCRIPT_PY)

TODAY = date(2024, 6, 3)  # a Monday; the 30 days learnt are 4 May to 2 June
OFFSET = timedelta(hours=2)  # the PBX's local time is UTC+2
NOW = datetime(2024, 6, 3, 0, 5) - OFFSET  # just after local midnight, in UTC
_ids = iter(range(1, 10**9))


def row(subscriber_id=1, at=datetime(2024, 6, 3, 10, 0), *, group_id=1, group="Sales",
        calltype=3, normalized="380441234567", seconds=120, cost="2.00", originator=None,
        direction=0, call_id=None):
    """One row of v_calls; `at` is the PBX's local time."""
    return {"id": call_id or next(_ids),
            "originator": originator or (str(100 + subscriber_id) if subscriber_id else "999"),
            "dialnumber": normalized, "calldatetime": at, "calldatetime_utc": at - OFFSET,
            "callseconds": seconds, "calltype": calltype,
            "cost": None if cost is None else Decimal(cost), "currency": "UAH",
            "normalized": normalized, "direction": direction, "subscriber_id": subscriber_id,
            "subscriber": f"Subscriber {subscriber_id}" if subscriber_id else "",
            "group_id": group_id if subscriber_id else None,
            "group": group if subscriber_id else None, "device_id": 1}


def history(subscriber_id=1, *, days=30, hours=(10, 11, 14, 16), weekends=False,
            day_cost=None, **fields):
    """A regular subscriber: calls at `hours` on each weekday (and weekend day, if
    `weekends`) of the `days` before TODAY; `day_cost` (a function of the day) spreads that
    cost over the day's calls; `fields` go to every row()."""
    rows = []
    for back in range(days, 0, -1):
        day = TODAY - timedelta(days=back)
        if day.weekday() >= 5 and not weekends:
            continue
        extra = dict(fields)
        if day_cost is not None:
            extra["cost"] = f"{day_cost(day) / len(hours):.2f}"
        rows += [row(subscriber_id, at(hour, day=day), **extra) for hour in hours]
    return rows


def learnt(*rows_lists):
    model = behaviour.Model()
    model.learn([r for rows in rows_lists for r in rows], NOW)
    return model


def at(hour, minute=0, day=TODAY):
    return datetime.combine(day, datetime.min.time()).replace(hour=hour, minute=minute)


def reasons(findings):
    return [(finding.reason, finding.level) for finding in findings]


class RecordingHost:
    """The host API of docs/scripts.md over a list of rows: query() answers the script's
    history query as the database would, and as the real host caps it at 10,000 rows
    (silently: scripts/sql.py fetches that many); call() answers from the rows by id."""

    closing = False
    CAP = 10_000

    def __init__(self, rows=(), *, fail_close=None, holidays=None):
        self.rows = sorted(rows, key=lambda r: r["id"])
        self.by_id = {r["id"]: r for r in self.rows}
        self.ids = [r["id"] for r in self.rows]
        self.fail_close, self.holiday_days = fail_close, holidays or {}
        self.logged, self.mails, self.alerts, self.queries, self.closed = [], [], [], [], []
        self.calls_read = 0
        self.largest_answer = 0

    def add(self, new_rows):
        for r in new_rows:
            self.by_id[r["id"]] = r

    def log(self, text):
        self.logged.append(text)

    def send_mail(self, to, subject, body):
        self.mails.append((to, subject, body))

    def alert(self, level, reason, call_id=None, subscriber_id=None):
        assert level in ("warning", "critical")
        self.alerts.append((level, reason, call_id, subscriber_id))

    def call(self, id):  # noqa: A002 (the host's name)
        self.calls_read += 1
        return self.by_id.get(id)

    def subscriber(self, id):  # noqa: A002
        return None

    def holidays(self, year, device_id):
        return [d for d in self.holiday_days.get(device_id, ()) if d.year == year]

    def close_subscriber(self, subscriber_id, reason):
        if self.fail_close:
            raise self.fail_close
        self.closed.append((subscriber_id, reason))

    def query(self, sql, params):
        self.queries.append((sql, params))
        assert sql == behaviour.HISTORY_QUERY
        since, after = datetime.fromisoformat(params[0]), params[1]
        answer = []
        for r in self.rows[bisect.bisect_right(self.ids, after):]:
            if r["direction"] == 0 and r["calldatetime_utc"] >= since:
                answer.append(dict(r))
                if len(answer) == self.CAP:
                    break
        self.largest_answer = max(self.largest_answer, len(answer))
        return answer


def scanner_for(host, monkeypatch, now=NOW):
    monkeypatch.setattr(behaviour, "utc_now", lambda: now)
    scanner = script_class()()
    scanner.init(host)
    return scanner


def script_class():
    classes = [obj for _, obj in inspect.getmembers(behaviour, inspect.isclass)
               if obj.__module__ == behaviour.__name__ and callable(getattr(obj, "main", None))]
    assert len(classes) == 1
    return classes[0]


def periodic(scanner):
    scanner.main({"event": "periodic", "profile": "KyivPBX"})


def processed(scanner, host, *rows):
    host.add(rows)
    for r in rows:
        scanner.main({"event": "call_processed", "profile": "KyivPBX", "id": r["id"]})


# -- the minimum history ------------------------------------------------------------------


def test_a_subscriber_with_too_little_history_is_judged_against_its_group_and_it_is_said_once():
    # given a group whose old member calls every weekday, and a new member with 3 days
    new = [row(2, at(10, 0, TODAY - timedelta(days=n))) for n in (1, 2, 3)]
    model = learnt(history(1), new)
    # when the new member makes a few calls today
    notes = []
    for minute in range(5):
        notes += model.score(row(2, at(11, minute)))[1]
    # then it is judged against its group, and the event log is told so once, not per call
    reference, own = model.profiles.reference(("s", 2), 1)
    assert own.active_days == 3 and reference.kind == "group"
    assert notes == ["subscriber 2 (Subscriber 2): 3 days with calls in the last 30, fewer "
                     "than 7; judged against its group 'Sales' until it has 7"]


def test_a_subscriber_with_enough_history_is_judged_on_its_own_and_nothing_is_said():
    # given a subscriber with 20 weekdays of calls
    model = learnt(history(1))
    # when it calls
    findings, notes = model.score(row(1, at(10)))
    # then its own profile is used, silently
    reference, own = model.profiles.reference(("s", 1), 1)
    assert reference is own and own.active_days == 20
    assert (findings, notes) == ([], [])


def test_a_subscriber_whose_group_is_too_new_too_is_judged_against_the_company():
    # given a company of one regular subscriber, and a newcomer alone in a new group
    model = learnt(history(1), [row(2, at(10, 0, TODAY - timedelta(days=1)), group_id=9,
                                    group="New")])
    # when the newcomer calls
    _, notes = model.score(row(2, at(10), group_id=9, group="New"))
    # then the company's profile is the reference
    assert model.profiles.reference(("s", 2), 9)[0].kind == "company"
    assert notes == ["subscriber 2 (Subscriber 2): 1 days with calls in the last 30, fewer "
                     "than 7; judged against the company until it has 7"]


def test_with_too_little_history_in_the_whole_company_nothing_is_judged(monkeypatch):
    # given a company with 3 days of calls, and a script that built its profiles from them
    host = RecordingHost([row(1, at(10, 0, TODAY - timedelta(days=n))) for n in (1, 2, 3)])
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    # when a burst of international calls to a high-risk country comes in at night
    processed(scanner, host, *[row(1, at(2, m), calltype=5, normalized="8821234567",
                                   seconds=900, cost="500.00") for m in range(10)])
    # then nothing alerts, and the log says why once
    assert host.alerts == []
    assert sum("the company has 3 days with calls" in line for line in host.logged) == 1


# -- robust statistics --------------------------------------------------------------------


def test_a_legitimate_monthly_peak_in_the_history_does_not_make_the_threshold_absurd():
    # given a subscriber whose days cost 10.00, and one month-end day that cost 500.00
    peak = TODAY - timedelta(days=3)
    model = learnt(history(1, day_cost=lambda day: 500.0 if day == peak else 10.0))
    days = [500.0 if d == peak else 10.0 for d in
            (TODAY - timedelta(days=n) for n in range(30, 0, -1)) if d.weekday() < 5]
    # when its threshold for a day's cost is taken
    own = model.profiles.subscribers[1]
    threshold = own.cost.threshold()
    # then it stays at 6x the median (60.00), where a mean plus 3 standard deviations
    # would let 300.00 of fraud a day through unseen
    assert statistics.median(days) == own.cost.median == pytest.approx(10.0)
    assert threshold == pytest.approx(60.0)
    assert statistics.mean(days) + 3 * statistics.pstdev(days) > 300
    # and a day of 150.00 (15x the median) alerts, with the reason in words
    findings, _ = model.score(row(1, at(10), cost="150.00"))
    assert reasons(findings) == [("cost_day", "warning")]
    assert findings[0].text == ("cost today 150.00 UAH, 15× this subscriber's median day of "
                                "the last 30 (10.00 UAH); alerts above 60.00 UAH")


def test_a_busy_day_twice_the_usual_does_not_alert():
    # given a subscriber with its usual calls and their cost
    model = learnt(history(1, day_cost=lambda day: 8.0 + day.day % 5))
    # when it makes twice as many calls as usual today, each at the usual price
    found = []
    for hour in (9, 10, 10, 11, 12, 14, 15, 16):
        found += model.score(row(1, at(hour), cost="2.50"))[0]
    # then nothing is far outside its behaviour
    assert found == []


def test_a_day_far_outside_is_critical_past_three_times_the_threshold():
    # given a subscriber whose days cost 10.00
    model = learnt(history(1, day_cost=lambda day: 10.0))
    # when today's calls add up to 100.00 and then to 200.00
    first, _ = model.score(row(1, at(10), cost="100.00"))
    second, _ = model.score(row(1, at(11), cost="100.00"))
    # then the first crossing is a warning, the second (past 3 x 60.00) critical
    assert reasons(first) == [("cost_day", "warning")]
    assert reasons(second) == [("cost_day", "critical")]


# -- the reasons --------------------------------------------------------------------------


def test_a_night_burst_alerts_once_per_reason_and_day_not_at_every_call():
    # given an office worker who has called abroad in office hours only
    model = learnt(history(1, calltype=5, normalized="4420794600", cost="5.00"))
    # when 13 international calls go out between 01:00 and 03:00
    per_call = [reasons(model.score(row(1, at(1 + m // 6, m % 6 * 10), calltype=5,
                                        normalized="4420794600", seconds=60, cost="5.00"))[0])
                for m in range(13)]
    # then the third raises a warning, the ninth turns it critical, and the others nothing
    assert per_call[2] == [("odd_hours", "warning")]
    assert per_call[8] == [("odd_hours", "critical")]
    assert [i for i, found in enumerate(per_call) if found] == [2, 8]
    # and the next day, a new burst alerts again
    again = [model.score(row(1, at(2, m, TODAY + timedelta(days=1)), calltype=5,
                             normalized="4420794600", seconds=60, cost="5.00"))[0]
             for m in range(3)]
    assert reasons(again[2]) == [("odd_hours", "warning")]
    assert again[2][0].text == ("3 international calls today between 02:00 and 02:02, hours "
                                "at which this subscriber does not call on weekdays (last 30 "
                                "days)")


def test_a_first_call_to_a_high_risk_country_alerts_critical_when_nobody_called_it():
    # given a subscriber and a colleague in another group who calls Cuba
    model = learnt(history(1), history(2, group_id=2, group="Export", calltype=5,
                                       normalized="5371234567"))
    # when the subscriber calls +882 and then Cuba
    networks, _ = model.score(row(1, at(10), calltype=5, normalized="88212345678"))
    cuba, _ = model.score(row(1, at(11, day=TODAY + timedelta(days=1)), calltype=5,
                              normalized="5371234567"))
    # then +882, new to the whole company, is critical; Cuba, which the company knows, a
    # warning; the reasons say it in words
    assert reasons(networks) == [("new_high_risk", "critical")]
    assert networks[0].text == ("first call to +882 (International Networks), a high-risk "
                                "destination, from this subscriber or its group 'Sales' in "
                                "the last 30 days; nobody in the company called it either")
    assert reasons(cuba) == [("new_high_risk", "warning")]


def test_a_high_risk_country_the_group_calls_is_not_new():
    # given a group in which one member calls Jamaica regularly
    model = learnt(history(1, calltype=5, normalized="18765551234"), history(2))
    # when the other member calls Jamaica too
    findings, _ = model.score(row(2, at(10), calltype=5, normalized="18765550000"))
    # then it is no first call: the group has it (and +1876 is Jamaica, not the USA)
    assert findings == []
    assert behaviour.country_of("18765550000") == "1876"
    assert behaviour.country_of("12125550000") == "1"


def test_calls_to_three_new_countries_in_a_day_alert():
    # given a subscriber who calls the UK
    model = learnt(history(1, calltype=5, normalized="4420794600"))
    # when it calls Germany, France and Japan today
    found = [model.score(row(1, at(10 + n), calltype=5, normalized=number))[0]
             for n, number in enumerate(("4930123456", "33123456789", "81312345678"))]
    # then the third new country alerts
    assert [reasons(f) for f in found] == [[], [], [("new_countries", "warning")]]
    assert "+49 (Germany), +33 (France), +81 (Japan)" in found[2][0].text


def test_a_number_unknown_to_the_system_calling_abroad_is_a_hijacked_number():
    # given a company with a fax line nobody owns (199), which calls every weekday
    fax = [dict(r, subscriber_id=None, group_id=None, originator="199")
           for r in history(1)]
    model = learnt(history(2), fax)
    # when 7777, never seen, calls abroad three times, and the fax line calls abroad once
    unknown = [model.score(row(None, at(3, n), originator="7777", calltype=5,
                               normalized="5371234567", cost="40.00"))[0] for n in range(3)]
    known = model.score(row(None, at(10), originator="199", calltype=5,
                            normalized="4420794600"))[0]
    # then 7777 alerts at once, and critical at its third call; the fax line does not
    assert [reasons(f) for f in unknown] == [[("unknown_number", "critical")], [], []]
    assert unknown[0][0].text == (
        "calls from 7777, a number unknown to the system (no subscriber, no outgoing call in "
        "the last 30 days): 1 international or expensive call(s) today costing 40.00 UAH, "
        "the last to +53 (Cuba)")
    assert known == []


def test_an_unknown_number_escalates_from_warning_to_critical():
    model = learnt(history(2))
    # when an unknown number calls the UK three times
    found = [model.score(row(None, at(10, n), originator="7001", calltype=5,
                             normalized="4420794600"))[0] for n in range(3)]
    # then a warning, then a critical alert at the third call
    assert [reasons(f) for f in found] == [[("unknown_number", "warning")], [],
                                           [("unknown_number", "critical")]]


def test_an_unknown_number_making_local_calls_is_not_suspicious():
    model = learnt(history(2))
    findings, _ = model.score(row(None, at(10), originator="7001", cost="0.50"))
    assert findings == []


def test_an_international_call_far_longer_than_usual_alerts():
    # given a subscriber whose international calls last 2 minutes
    model = learnt(history(1, calltype=5, normalized="4420794600", seconds=120))
    # when it makes one of 2 hours, and the next day one of 3
    two, _ = model.score(row(1, at(10), calltype=5, normalized="4420794600", seconds=7200))
    three, _ = model.score(row(1, at(10, day=TODAY + timedelta(days=1)), calltype=5,
                               normalized="4420794600", seconds=3 * 3600))
    # then each alerts: past 1 h (the minimum) a warning, from 3 h on critical
    assert ("long_call", "warning") in reasons(two)
    assert ("long_call", "critical") in reasons(three)
    assert [f.text for f in two if f.reason == "long_call"] == [
        "an international call of 2 h 00 min to +44 (United Kingdom), longer than 3× the "
        "99th percentile of the calls of this subscriber (2 min 00 s); alerts above 1 h 00 min"]


def test_incoming_and_internal_calls_are_not_judged():
    model = learnt(history(1))
    assert model.score(row(1, at(3), direction=1, calltype=2, cost="900.00")) == ([], [])
    assert model.score(row(1, at(3), direction=2, calltype=1, cost="900.00")) == ([], [])


def test_a_public_holiday_is_judged_as_a_weekend_day():
    # given a subscriber who calls abroad on weekday and weekend mornings, and Monday 3 June
    # a holiday of its PBX
    rows = history(1, calltype=5, normalized="4420794600", weekends=True, hours=(10, 11))
    model = behaviour.Model()
    model.learn(rows, NOW, holidays=lambda device: {TODAY})
    # when it calls abroad at 10:00 that day
    findings = [model.score(row(1, at(10, n), calltype=5, normalized="4420794600"))[0]
                for n in range(4)]
    # then the day counts as a weekend day, at whose mornings it works: nothing is odd
    assert model.profiles.holidays == {1: frozenset({TODAY})}
    assert findings == [[], [], [], []]


# -- memory -------------------------------------------------------------------------------


def test_day_totals_are_kept_for_today_and_yesterday_only(monkeypatch):
    model = learnt(history(1), history(2))
    # when calls come in on five days
    for n in range(5):
        model.score(row(1, at(10, day=TODAY + timedelta(days=n))))
        model.score(row(2, at(10, day=TODAY + timedelta(days=n))))
    # then only the last two days' totals are kept
    assert sorted({day for _, day in model.totals}) == [TODAY + timedelta(days=3),
                                                        TODAY + timedelta(days=4)]
    # and past MAX_DAY_TOTALS the oldest go
    monkeypatch.setattr(behaviour, "MAX_DAY_TOTALS", 3)
    for subscriber_id in range(10, 20):
        model.score(row(subscriber_id, at(10, day=TODAY + timedelta(days=4))))
    assert len(model.totals) == 3


# -- the script: events, paging, alerts, mail, closing --------------------------------------


def test_the_periodic_rebuild_pages_through_more_than_10000_rows(monkeypatch):
    # given 25,000 outgoing calls in the last 30 days (and incoming ones in between), on a
    # host that answers at most 10,000 rows per query
    rows = []
    for n in range(25_000):
        start = at(8 + n % 10, n % 60, TODAY - timedelta(days=1 + n % 28))
        rows.append(row(1 + n % 250, start, group_id=1 + n % 5))
        if n % 10 == 0:
            rows.append(row(1, start, direction=1, calltype=2))
    host = RecordingHost(rows)
    scanner = scanner_for(host, monkeypatch)
    # when the periodic event builds the profiles
    periodic(scanner)
    # then the script paged on by id, read every call, and no answer passed the cap (and,
    # being a fresh process, read today's calls once more: none)
    since = (NOW - timedelta(days=32)).strftime("%Y-%m-%d %H:%M:%S")
    afters = [params[1] for _, params in host.queries if params[0] == since]
    assert len(host.queries) == 4 and len(afters) == 3 and afters[0] == 0
    assert afters == sorted(afters) and len(set(afters)) == 3
    assert host.largest_answer == 10_000
    profiles = scanner.model.profiles
    assert profiles.calls == 25_000
    assert len(profiles.subscribers) == 250 and len(profiles.groups) == 5
    assert any(line.startswith("profiles built from 25,000 outgoing calls") for line in
               host.logged)


def test_a_build_longer_than_its_budget_goes_on_at_the_next_event(monkeypatch):
    # given 25,000 calls and no time to read more than one page per event
    monkeypatch.setattr(behaviour, "BUILD_BUDGET_S", 0)
    host = RecordingHost([row(1 + n % 50, at(10, 0, TODAY - timedelta(days=1 + n % 20)))
                          for n in range(25_000)])
    scanner = scanner_for(host, monkeypatch)
    # when periodic events come
    periodic(scanner)
    periodic(scanner)
    assert scanner.model.profiles is None and len(host.queries) == 2
    periodic(scanner)
    # then the third ends the build
    assert scanner.model.profiles.calls == 25_000
    assert sum(line.startswith("building the profiles") for line in host.logged) == 2


def test_the_profiles_are_rebuilt_only_every_rebuild_interval(monkeypatch):
    host = RecordingHost(history(1))
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    periodic(scanner)
    assert len(host.queries) == 2  # the history, and today's calls (a fresh process)
    monkeypatch.setattr(behaviour, "REBUILD_EVERY_S", 0)
    periodic(scanner)
    assert len(host.queries) == 3


def test_scoring_calls_reads_each_call_once_and_makes_no_query(monkeypatch):
    # given profiles built at a periodic event
    host = RecordingHost(history(1) + history(2))
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    queries = len(host.queries)
    # when 200 calls are processed, some of them alerting
    calls = [row(1 + n % 2, at(1 + n % 20, n % 60), calltype=5, normalized="8821234567",
                 cost="9.00") for n in range(200)]
    processed(scanner, host, *calls)
    # then each call was read once with host.call(), and no query was made
    assert len(host.queries) == queries
    assert host.calls_read == 200
    assert host.alerts


def test_the_first_call_after_a_start_builds_the_profiles_and_counts_todays_calls(monkeypatch):
    # given a process started at 15:00, when the subscriber had already spent 70.00 today
    now = datetime(2024, 6, 3, 15, 0) - OFFSET
    spent = [row(1, at(9 + n), cost="10.00") for n in range(6)]  # 60.00, not yet alerting
    host = RecordingHost(history(1, day_cost=lambda day: 10.0) + spent)
    scanner = scanner_for(host, monkeypatch, now=now)
    # when the first event is a call of 10.00 more (already stored, so read by the build)
    # and then another of 10.00
    late = row(1, at(14, 30), cost="10.00")
    host.rows.append(late)
    host.ids.append(late["id"])
    processed(scanner, host, late, row(1, at(15, 1), cost="10.00"))
    # then the profiles were built at once, today's calls counted once each (80.00 > 60.00)
    assert len(host.queries) == 2
    assert "7 calls of today counted into the day totals" in host.logged
    (level, reason, call_id, subscriber_id), = host.alerts
    assert (level, call_id, subscriber_id) == ("warning", late["id"], 1)
    assert reason.startswith("cost today 70.00 UAH")


def test_each_call_with_alerts_gets_one_mail_with_every_reason(monkeypatch):
    host = RecordingHost(history(1, day_cost=lambda day: 10.0))
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    call = row(1, at(10), calltype=5, normalized="8821234567", cost="100.00", call_id=4711)
    processed(scanner, host, call)
    assert [(level, call_id) for level, _, call_id, _ in host.alerts] == [
        ("warning", 4711), ("critical", 4711)]
    (to, subject, body), = host.mails
    assert (to, subject) == ("", "Fraud Detection system: unusual behaviour")
    assert body.splitlines()[0] == (
        "Unusual behaviour: 2 alert(s). ID=4711 CallDateTime=2024-06-03 10:00:00 "
        "Call duration=120 Originator=101 Dialnumber=8821234567 Subscriber=Subscriber 1, "
        "Sales")
    assert body.splitlines()[1].startswith("[warning] cost today 100.00 UAH")
    assert body.splitlines()[2].startswith("[critical] first call to +882")


@pytest.mark.parametrize(("switch", "fail", "closed", "logged"), [
    pytest.param(False, None, [], None, id="off: nobody is closed"),
    pytest.param(True, None, [1], "subscriber 1 closed: ", id="on: closed once a day"),
    pytest.param(True, RuntimeError("ValueError: closing a subscriber on the PBX needs the "
                                    "restrictions module"), [],
                 "subscriber 1 not closed: ValueError: closing a subscriber", id="on: failing"),
])
def test_a_critical_alert_closes_the_subscriber_only_when_switched_on(
        monkeypatch, switch, fail, closed, logged):
    # given the switch, and a host whose close_subscriber works or raises
    monkeypatch.setattr(behaviour, "CLOSE_ON_CRITICAL", switch)
    host = RecordingHost(history(1), fail_close=fail)
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    # when the subscriber calls two new high-risk countries nobody called (critical twice)
    processed(scanner, host, row(1, at(10), calltype=5, normalized="8821234567"),
              row(1, at(11), calltype=5, normalized="97912345678"),
              row(1, at(12), calltype=5, normalized="88312345678"))
    # then it is closed at most once, and an error is logged, not raised
    assert [subscriber_id for subscriber_id, _ in host.closed] == closed
    assert not any("Error running script" in line for line in host.logged)
    if logged:
        assert sum(line.startswith(logged) for line in host.logged) == 1
    assert any(level == "critical" for level, *_ in host.alerts)


def test_a_day_with_a_critical_alert_is_left_out_of_the_next_build(monkeypatch):
    # given a subscriber that called +882 yesterday, which alerted critical
    yesterday = TODAY - timedelta(days=1)
    host = RecordingHost(history(1))
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    fraud = row(1, at(10, day=yesterday), calltype=5, normalized="8821234567")
    host.rows.append(fraud)
    host.ids.append(fraud["id"])
    processed(scanner, host, fraud)
    assert host.alerts[0][0] == "critical"
    # when the profiles are rebuilt
    monkeypatch.setattr(behaviour, "REBUILD_EVERY_S", 0)
    periodic(scanner)
    # then +882 did not become usual for it
    assert "882" not in scanner.model.profiles.subscribers[1].countries


def test_an_error_is_logged_with_its_traceback_and_never_raised(monkeypatch):
    # given built profiles, and a stored call whose start is no date
    host = RecordingHost(history(1))
    scanner = scanner_for(host, monkeypatch)
    periodic(scanner)
    host.add([dict(row(1, at(10), call_id=5), calldatetime="yesterday")])
    # when it is processed, and then a call that is not there
    scanner.main({"event": "call_processed", "profile": "KyivPBX", "id": 5})
    error = host.logged[-1]
    scanner.main({"event": "call_processed", "profile": "KyivPBX", "id": 404})
    # then main() returned each time: the error logged with its traceback, the absence said
    assert error.startswith("Error running script: Traceback (most recent call last):")
    assert "Invalid isoformat string" in error
    assert host.logged[-1] == "call 404 is not in v_calls"


def test_the_file_is_one_script_class_on_the_standard_library_alone():
    tree = ast.parse(SCRIPT_PY.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= set(sys.stdlib_module_names)
    cls = script_class()
    assert callable(cls.init) and callable(cls.main)
    assert (behaviour.LEARN_DAYS, behaviour.MIN_ACTIVE_DAYS, behaviour.CLOSE_ON_CRITICAL,
            behaviour.MAIL_TO) == (30, 7, False, "")


# -- the evaluation -----------------------------------------------------------------------

EVALUATION_LEARNS = 30  # days
INTENDED = {"night_burst": "international calls today between",
            "high_risk": "a high-risk destination", "cost_spike": "cost today",
            "hijacked": "a number unknown to the system"}


def test_evaluation_on_60_days_of_office_traffic_with_fraud_injected(monkeypatch):
    # given 60 days of a 300-subscriber office's calls, fraud injected on days 31-60
    began = time.monotonic()
    office = traffic.inject(traffic.generate(), first_day=EVALUATION_LEARNS)
    first_scored = traffic.FIRST_DAY + timedelta(days=EVALUATION_LEARNS)
    learning = [r for r in office.rows if r["calldatetime"].date() < first_scored]
    scored = [r for r in office.rows if r["calldatetime"].date() >= first_scored]
    host = RecordingHost(learning)
    midnight = datetime.combine(first_scored, datetime.min.time()) - traffic.UTC_OFFSET
    scanner = scanner_for(host, monkeypatch, now=midnight)
    generated = time.monotonic() - began
    # when the script learns the first 30 days and then judges days 31-60 call by call
    periodic(scanner)
    queries = len(host.queries)
    host.add(scored)
    for r in scored:
        scanner.main({"event": "call_processed", "profile": "KyivPBX", "id": r["id"]})
    # then every injected anomaly alerted, on the caller and day of the fraud
    assert len(host.queries) == queries and not any("Error" in line for line in host.logged)
    alerted = {}  # (subscriber id or number, day) -> reasons
    for _, reason, call_id, subscriber_id in host.alerts:
        call = host.by_id[call_id]
        who = subscriber_id if subscriber_id is not None else call["originator"]
        alerted.setdefault((who, call["calldatetime"].date()), []).append(reason)
    caught = [a for a in office.anomalies
              if (a.subscriber_id if a.subscriber_id is not None else a.number, a.day)
              in alerted]
    # and fewer than 1 % of the normal subscriber-days raised any alert
    fraudsters = {a.subscriber_id for a in office.anomalies}
    normal_days = {(r["subscriber_id"], r["calldatetime"].date()) for r in scored
                   if r["direction"] == 0 and r["subscriber_id"] is not None
                   and r["subscriber_id"] not in fraudsters}
    false = sorted(key for key in alerted if key in normal_days)
    share = 100 * len(false) / len(normal_days)
    anomalous = {(a.subscriber_id if a.subscriber_id is not None else a.number, a.day)
                 for a in office.anomalies}
    # (other days of the subscribers with an anomaly, and numbers without a subscriber)
    other_days = sorted(key for key in alerted if key not in normal_days
                        and key not in anomalous and isinstance(key[0], int))
    other_numbers = sorted(key for key in alerted if key not in anomalous
                           and not isinstance(key[0], int))
    print(f"\nfraud_behaviour evaluation: {len(office.subscribers)} subscribers, "
          f"{len(learning):,} calls learnt, {len(scored):,} judged "
          f"({time.monotonic() - began - generated:.1f} s; generating {generated:.1f} s)")
    print(f"alerts on anomalies: {len(caught)}/{len(office.anomalies)} "
          + ", ".join(f"{kind} {sum(a.kind == kind for a in caught)}/"
                      f"{sum(a.kind == kind for a in office.anomalies)}"
                      for kind in ("night_burst", "high_risk", "cost_spike", "hijacked")))
    print(f"false-positive subscriber-days: {len(false)}/{len(normal_days)} = {share:.2f} %")
    print(f"alerts on other days of the subscribers with an anomaly: {len(other_days)}; "
          f"on numbers without a subscriber, not injected: {len(other_numbers)}")
    for anomaly in office.anomalies:
        key = (anomaly.subscriber_id if anomaly.subscriber_id is not None else anomaly.number,
               anomaly.day)
        print(f"  {anomaly.kind:<12} {key[0]!s:>5} {anomaly.day}: "
              + " | ".join(reason[:60] for reason in alerted.get(key, ["MISSED"])))
    for key in false + other_days + other_numbers:
        print(f"  false positive {key[0]!s:>5} {key[1]}: {alerted[key][0][:110]}")
    missed = [a for a in office.anomalies if a not in caught]
    assert missed == []
    for anomaly in office.anomalies:  # each by the reason meant to catch it
        key = (anomaly.subscriber_id if anomaly.subscriber_id is not None else anomaly.number,
               anomaly.day)
        assert any(INTENDED[anomaly.kind] in reason for reason in alerted[key]), anomaly
    assert share < 1.0
    assert other_numbers == []


# -- through the real host ----------------------------------------------------------------


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_script_learns_and_judges_through_the_real_host(site):
    # given eight days of calls of 101 before today (Kyiv time), stored as the PBX sent them
    from zoneinfo import ZoneInfo

    from billing.models import Call
    from scripts.host import ScriptProcess
    from tests.observers.threecx_cdr import cdr_line

    today = datetime.now(ZoneInfo("Europe/Kyiv")).date()
    lines = []
    for n in range(1, 9):
        day = (today - timedelta(days=n)).strftime("%Y/%m/%d")
        lines.append(cdr_line(historyid=f"Call {n}", callid=f"00000000c0ffee{n:02d}_1",
                              time_start=f"{day} 10:00:00", time_answered=f"{day} 10:00:05",
                              time_end=f"{day} 10:01:06"))
    site.ingest(*lines)
    assert Call.objects.count() == 8
    process = ScriptProcess(SCRIPT_PY)
    try:
        # when the periodic event builds the profiles, and a call is processed
        built = process.run({"event": "periodic", "profile": "KyivPBX"})
        judged = process.run({"event": "call_processed", "profile": "KyivPBX",
                              "id": Call.objects.order_by("id").last().pk})
    finally:
        process.close()
    # then the history query ran on this database and read every call, by its UTC start
    assert built.error is None and judged.error is None
    (line,) = [line for line in built.log if line.startswith("profiles built")]
    assert line.startswith(
        f"profiles built from 8 outgoing calls of the last 30 days "
        f"({today - timedelta(days=8)}..{today - timedelta(days=1)}): 1 subscribers "
        "(1 with 7+ days of calls), 1 groups, 0 numbers without a subscriber; 1 queries, ")
    assert not any("Error" in line for line in built.log + judged.log)
