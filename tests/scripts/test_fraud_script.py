"""R9.4: the shipped fraud.py, Tariscope's fraud.cs ported: its condition at each boundary,
and what its main() does with a host. A unit test of the script's own logic, loaded from its
file as the script host loads it; the run through the real host is in test_host.py."""
import ast
import importlib.util
import inspect
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

FRAUD_PY = Path(__file__).resolve().parents[2] / "scripts" / "shipped" / "fraud.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location("shipped_fraud", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fraud = _load(FRAUD_PY)

# A week of June 2024: the 19th is a Wednesday.
WEDNESDAY, FRIDAY, SATURDAY, SUNDAY = "2024-06-19", "2024-06-21", "2024-06-22", "2024-06-23"


def row(*, at=f"{WEDNESDAY} 23:00:00", seconds=151, calltype=5, cost=None, call_id=7):
    """One row of v_calls as the script's query selects it; `at` is local time."""
    return {"id": call_id, "originator": "101", "dialnumber": "0044207946000",
            "calldatetime": datetime.fromisoformat(at), "callseconds": seconds,
            "calltype": calltype, "cost": cost}


class RecordingHost:
    """The host API of docs/scripts.md, answering query() from a dict of rows by id and
    recording what the script asked of it."""

    closing = False

    def __init__(self, rows=(), fail_query=None, fail_mail=None):
        self.rows = {r["id"]: r for r in rows}
        self.fail_query, self.fail_mail = fail_query, fail_mail
        self.logged, self.mails, self.alerts, self.queries = [], [], [], []

    def log(self, text):
        self.logged.append(text)

    def send_mail(self, to, subject, body):
        if self.fail_mail:
            raise self.fail_mail
        self.mails.append((to, subject, body))

    def alert(self, level, reason, call_id=None, subscriber_id=None):
        self.alerts.append((level, reason, call_id, subscriber_id))

    def call(self, id):
        return self.rows.get(id)

    def subscriber(self, id):
        return None

    def query(self, sql, params):
        self.queries.append((sql, params))
        if self.fail_query:
            raise self.fail_query
        assert "FROM v_calls WHERE id = %s" in sql
        found = self.rows.get(params[0])
        return [found] if found else []


def run_main(host, call_id=7):
    """Load the script's one class as the host does, init() it and run one event."""
    scanner = script_class()()
    scanner.init(host)
    scanner.main({"event": "call_processed", "profile": "KyivPBX", "id": call_id})
    return host


def script_class():
    classes = [obj for _, obj in inspect.getmembers(fraud, inspect.isclass)
               if obj.__module__ == fraud.__name__]
    assert len(classes) == 1
    return classes[0]


@pytest.mark.parametrize(("seconds", "expected"), [
    pytest.param(149, False, id="149 s"),
    pytest.param(150, False, id="150 s, the limit itself"),
    pytest.param(151, True, id="151 s"),
])
def test_only_calls_longer_than_the_limit_are_suspicious(seconds, expected):
    # given an international call at 23:00 on a Wednesday lasting around 150 s
    call = row(seconds=seconds)
    # when it is checked
    # then only one of more than 150 s is suspicious, as `CallSeconds > 150` in fraud.cs
    assert fraud.suspicious(call) is expected


@pytest.mark.parametrize(("time_of_day", "expected"), [
    pytest.param("07:59:59", True, id="07:59:59, before work"),
    pytest.param("08:00:00", False, id="08:00:00, work begins"),
    pytest.param("12:00:00", False, id="noon"),
    pytest.param("19:00:00", False, id="19:00:00, work ends"),
    pytest.param("19:00:00.000001", True, id="a microsecond after 19:00"),
    pytest.param("19:00:01", True, id="19:00:01, after work"),
    pytest.param("00:00:00", True, id="midnight"),
])
def test_a_weekday_call_is_suspicious_only_strictly_outside_working_hours(time_of_day, expected):
    # given a long international call on a Wednesday
    call = row(at=f"{WEDNESDAY} {time_of_day}")
    # when it is checked
    # then the bounds themselves are working hours (fraud.cs compares with > and <)
    assert fraud.suspicious(call) is expected


@pytest.mark.parametrize(("at", "expected"), [
    pytest.param(f"{FRIDAY} 23:00:00", True, id="Friday 23:00"),
    pytest.param(f"{FRIDAY} 12:00:00", False, id="Friday noon"),
    pytest.param(f"{SATURDAY} 12:00:00", True, id="Saturday noon"),
    pytest.param(f"{SUNDAY} 12:00:00", True, id="Sunday noon"),
    pytest.param("2024-06-24 12:00:00", False, id="Monday noon"),
])
def test_any_time_of_a_weekend_day_is_suspicious(at, expected):
    # given a long international call on a day of the week
    call = row(at=at)
    # when it is checked
    # then Saturday and Sunday count at any hour, a weekday only outside working hours
    assert fraud.suspicious(call) is expected


@pytest.mark.parametrize("calltype", [
    pytest.param(4, id="long-distance"),
    pytest.param(6, id="mobile"),
    pytest.param(3, id="local"),
])
@pytest.mark.parametrize("at", [
    pytest.param(f"{WEDNESDAY} 23:00:00", id="weekday night"),
    pytest.param(f"{SUNDAY} 12:00:00", id="Sunday noon"),
])
def test_calls_other_than_international_are_never_suspicious(calltype, at):
    # given a long call, not international, at a suspicious time
    call = row(calltype=calltype, at=at, seconds=3600)
    # when it is checked
    # then it is not suspicious: only call type 5 is looked at
    assert fraud.suspicious(call) is False


@pytest.mark.parametrize(("cost", "expected"), [
    pytest.param(Decimal("9.99"), False, id="below"),
    pytest.param(Decimal("10.00"), False, id="equal"),
    pytest.param(Decimal("10.01"), True, id="above"),
    pytest.param("10.01", True, id="above, as text over the pipe"),
    pytest.param(None, False, id="not rated"),
])
def test_with_a_cost_threshold_only_calls_costing_more_are_suspicious(monkeypatch, cost, expected):
    # given the article's threshold of 10.0 set, and a long international call at night
    monkeypatch.setattr(fraud, "MAX_CALL_COST", 10.0)
    call = row(cost=cost)
    # when it is checked
    # then it is suspicious only when its cost is strictly above the threshold
    assert fraud.suspicious(call) is expected


def test_a_cost_threshold_adds_to_the_other_conditions(monkeypatch):
    # given a threshold, and an expensive international call in working hours
    monkeypatch.setattr(fraud, "MAX_CALL_COST", 10)
    expensive_by_day = row(at=f"{WEDNESDAY} 12:00:00", cost=Decimal("500"))
    expensive_but_short = row(seconds=150, cost=Decimal("500"))
    # when they are checked
    # then the cost alone does not make a call suspicious
    assert fraud.suspicious(expensive_by_day) is False
    assert fraud.suspicious(expensive_but_short) is False


def test_without_a_cost_threshold_the_cost_does_not_matter():
    # given the shipped constants (no threshold) and calls of any cost, or none
    calls = [row(cost=None), row(cost=Decimal("0")), row(cost=Decimal("0.01"))]
    # when they are checked
    # then each is suspicious on its time, type and duration alone
    assert fraud.MAX_CALL_COST is None
    assert [fraud.suspicious(call) for call in calls] == [True, True, True]


@pytest.mark.parametrize(("calldatetime", "expected"), [
    pytest.param(datetime(2024, 6, 19, 19, 0, 1), True, id="datetime, 19:00:01"),
    pytest.param("2024-06-19T19:00:01", True, id="ISO text, 19:00:01"),
    pytest.param("2024-06-19 19:00:01", True, id="ISO text with a space, 19:00:01"),
    pytest.param(datetime(2024, 6, 19, 19, 0, 0), False, id="datetime, 19:00:00"),
    pytest.param("2024-06-19T19:00:00", False, id="ISO text, 19:00:00"),
    pytest.param("2024-06-22T12:00:00", True, id="ISO text, Saturday noon"),
])
def test_calldatetime_is_read_alike_as_a_datetime_or_as_iso_text(calldatetime, expected):
    # given a local start handed over as a datetime or as its ISO text (JSON over the pipe)
    call = dict(row(), calldatetime=calldatetime)
    # when it is checked
    # then the result is the same either way
    assert fraud.suspicious(call) is expected


def test_edited_working_hours_move_the_boundaries(monkeypatch):
    # given an administrator's working day of 09:30 to 18:00, written with seconds
    monkeypatch.setattr(fraud, "BEGINNING_OF_WORK", "09:30:00")
    monkeypatch.setattr(fraud, "END_OF_WORK", "18:00")
    # when calls around those times are checked
    checked = [fraud.suspicious(row(at=f"{WEDNESDAY} {t}"))
               for t in ("09:29:59", "09:30:00", "18:00:00", "18:00:01")]
    # then the new bounds apply, still strictly
    assert checked == [True, False, False, True]


def test_a_suspicious_call_is_mailed_with_fraud_cs_text_and_the_numbers():
    # given a long international call on a Saturday night in v_calls
    host = RecordingHost([row(call_id=4711, at=f"{SATURDAY} 02:15:00", seconds=600)])
    # when the script runs for it
    run_main(host, call_id=4711)
    # then it logged the call first, read it from v_calls by id, and mailed the default
    # recipient with the original's subject and first sentence, then the numbers
    assert host.logged == ["New call processing, ID= 4711"]
    assert host.queries == [(fraud.QUERY, [4711])]
    assert host.mails == [("", "Fraud Detection system",
                           "Suspicious call detected. ID=4711 CallDateTime=2024-06-22 02:15:00"
                           " Call duration=600 Originator=101 Dialnumber=0044207946000")]
    assert host.alerts == []


def test_a_call_handed_over_as_json_text_is_mailed_alike():
    # given the row as it arrives over the pipe: the start as ISO text
    host = RecordingHost([dict(row(), calldatetime="2024-06-19T23:00:00")])
    # when the script runs for it
    run_main(host)
    # then the mail shows the same local date-time
    (_, _, body), = host.mails
    assert body.startswith("Suspicious call detected. ID=7 CallDateTime=2024-06-19 23:00:00 "
                           "Call duration=151")


@pytest.mark.parametrize("stored", [
    pytest.param([row(at=f"{WEDNESDAY} 12:00:00")], id="a call in working hours"),
    pytest.param([row(seconds=150)], id="a call of 150 s"),
    pytest.param([], id="a call not in v_calls"),
])
def test_no_mail_for_a_call_that_is_not_suspicious_or_not_found(stored):
    # given a call that does not alert, or none at all
    host = RecordingHost(stored)
    # when the script runs
    run_main(host)
    # then it only logged the call, as fraud.cs does
    assert host.logged == ["New call processing, ID= 7"]
    assert host.mails == []


def test_an_edited_recipient_and_subject_are_used(monkeypatch):
    # given an administrator's own recipient and subject
    monkeypatch.setattr(fraud, "MAIL_TO", "security@example.com")
    monkeypatch.setattr(fraud, "SUBJECT", "Получен вызов с признаками фрода")
    host = RecordingHost([row()])
    # when the script runs for a suspicious call
    run_main(host)
    # then the mail goes there with that subject
    assert [(to, subject) for to, subject, _ in host.mails] == [
        ("security@example.com", "Получен вызов с признаками фрода")]


@pytest.mark.parametrize(("host", "message"), [
    pytest.param(RecordingHost(fail_query=RuntimeError("the query took too long")),
                 "the query took too long", id="the query fails"),
    pytest.param(RecordingHost([row()], fail_mail=RuntimeError("no recipient configured")),
                 "no recipient configured", id="the mail fails"),
    pytest.param(RecordingHost([dict(row(), calldatetime="yesterday")]),
                 "Invalid isoformat string", id="a start that is no date"),
])
def test_an_error_is_logged_with_its_traceback_and_not_raised(host, message):
    # given a host whose query or mail fails, or a row the script cannot read
    # when the script runs
    run_main(host)
    # then main() returned, and logged the error with its traceback, as fraud.cs's catch does
    assert host.logged[0] == "New call processing, ID= 7"
    assert len(host.logged) == 2
    assert host.logged[1].startswith("Error running script: Traceback (most recent call last):")
    assert message in host.logged[1]
    assert host.mails == []


def test_the_file_is_one_class_on_the_standard_library_alone_with_fraud_cs_constants():
    # given the shipped file
    tree = ast.parse(FRAUD_PY.read_text(encoding="utf-8"))
    # when its imports and its class are looked at
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    cls = script_class()
    # then it imports only the standard library (it runs without Django), has one class with
    # init() and main(), and ships fraud.cs's settings
    assert imported and imported <= set(sys.stdlib_module_names)
    assert callable(cls.init) and callable(cls.main)
    assert (fraud.MAX_CALL_DURATION_S, fraud.CALLTYPE_INTERNATIONAL, fraud.BEGINNING_OF_WORK,
            fraud.END_OF_WORK, fraud.MAX_CALL_COST, fraud.MAIL_TO, fraud.SUBJECT) == (
        150, 5, "08:00", "19:00", None, "", "Fraud Detection system")
