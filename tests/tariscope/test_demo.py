"""`manage.py seed_demo`: the demo site and its 3CX CDR files (tariscope/demo/site.py)."""
import json
import zoneinfo
from collections import Counter
from datetime import date
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db.models.functions import TruncDate

from billing.models import Call, Device, Node, PhoneNumber, Route, Subscriber, SubscriberGroup
from billing.numbering import DialPlan, Kind, parse_number
from observers.models import ObserverProfile
from observers.parsers.base import Reject
from observers.parsers.threecx import parse
from tariffs.choices import CallType, Direction
from tariffs.models import PhoneCode, Tariff, TariffPrice
from tariscope.demo.site import (
    MALFORMED_LINES,
    REASSIGNED_DN,
    REASSIGNED_TO,
    STAFF,
    UNASSIGNED_DN,
    Period,
    demo_cdr,
    demo_period,
    roster_on,
)

# A Wednesday: `--days 2` gives Monday 16 and Tuesday 17 June 2025, two working days.
WEDNESDAY = "2025-06-18 09:00:00+03:00"
KYIV = zoneinfo.ZoneInfo("Europe/Kyiv")
JUNE = Period(date(2025, 6, 1), date(2025, 6, 30))


def _seed(*args) -> str:
    out = StringIO()
    with time_machine.travel(WEDNESDAY, tick=False):
        call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _parsed(cdr):
    records, rejects = [], []
    for _, data in cdr.files:
        for item in parse(data):
            (rejects if isinstance(item, Reject) else records).append(item)
    return records, rejects


@pytest.mark.parametrize(
    ("today", "months", "days", "first", "last"),
    [
        # the previous full calendar month
        (date(2025, 6, 18), 1, None, date(2025, 5, 1), date(2025, 5, 31)),
        (date(2025, 3, 1), 1, None, date(2025, 2, 1), date(2025, 2, 28)),
        # several months run back over a new year
        (date(2025, 2, 10), 3, None, date(2024, 11, 1), date(2025, 1, 31)),
        # days end yesterday and win over months
        (date(2025, 6, 18), 1, 2, date(2025, 6, 16), date(2025, 6, 17)),
        (date(2025, 1, 1), 5, 1, date(2024, 12, 31), date(2024, 12, 31)),
    ],
)
def test_demo_period_is_the_months_before_this_one_or_the_days_before_today(
        today, months, days, first, last):
    # given a date and a length / when the demo period is computed / then
    assert demo_period(today=today, months=months, days=days) == Period(first, last)


def test_number_changes_hands_mid_month_and_never_on_the_first_day():
    # given a month, and a period of a single day
    one_day = Period(date(2025, 6, 17), date(2025, 6, 17))
    # when / then the middle of the month, and the day after a single day
    assert JUNE.reassigned_on == date(2025, 6, 16)
    assert one_day.reassigned_on == date(2025, 6, 18)
    # and the CDR shows the new holder's name from that day
    names = {d: next(x.name for x in roster_on(d, JUNE) if x.dn == REASSIGNED_DN)
             for d in (date(2025, 6, 15), date(2025, 6, 16))}
    assert names[date(2025, 6, 15)] != REASSIGNED_TO
    assert names[date(2025, 6, 16)] == REASSIGNED_TO


def test_a_month_of_files_parses_with_exactly_the_deliberate_rejects():
    # given the CDR files of a month
    cdr = demo_cdr(period=JUNE, seed=1)
    # when the 3CX parser reads them
    records, rejects = _parsed(cdr)
    # then one file a day, every call parses, and only the deliberate lines are rejected
    assert len(cdr.files) == 30
    assert all(name.startswith("cdr-2506") and name.endswith(".log") for name, _ in cdr.files)
    assert len(rejects) == MALFORMED_LINES == cdr.malformed == 2
    assert len(records) == cdr.total
    assert 3000 <= len(records) <= 6000
    assert len({r.source_key for r in records}) == len(records)


def test_a_month_of_calls_looks_like_an_office():
    # given the calls of a month as the parser sees them
    records, _ = _parsed(demo_cdr(period=JUNE, seed=1))
    answered = [r.duration for r in records if r.duration]
    by_direction = Counter(r.direction for r in records)
    # then all three directions occur, some calls were not answered
    assert set(by_direction) == {Direction.OUTGOING, Direction.INCOMING, Direction.INTERNAL}
    assert 0.05 < 1 - len(answered) / len(records) < 0.3
    # and most calls last half a minute to five minutes, a few over a quarter of an hour
    assert sum(30 <= d <= 300 for d in answered) / len(answered) > 0.7
    assert 0 < sum(d > 900 for d in answered) / len(answered) < 0.1
    # and calls happen in working hours on working days
    weekday_calls = sum(r.start.weekday() < 5 for r in records)
    assert weekday_calls / len(records) > 0.95
    assert sum(8 <= r.start.hour < 19 for r in records) / len(records) > 0.9
    # and the meeting-room phone, held by nobody, makes a few outgoing calls
    assert 1 <= sum(r.extension == UNASSIGNED_DN for r in records) <= 40


def test_the_same_seed_gives_the_same_files_and_another_seed_other_calls():
    # given two days generated twice with one seed and once with another
    period = Period(date(2025, 6, 16), date(2025, 6, 17))
    # when / then
    assert demo_cdr(period=period, seed=1).files == demo_cdr(period=period, seed=1).files
    assert demo_cdr(period=period, seed=1).files != demo_cdr(period=period, seed=2).files
    # and a day's file does not depend on the period it was generated in
    alone = demo_cdr(period=Period(date(2025, 6, 10), date(2025, 6, 10)), seed=1)
    in_june = dict(demo_cdr(period=JUNE, seed=1).files)
    name, data = alone.files[0]
    calls = [item for item in parse(data) if not isinstance(item, Reject)]
    assert calls == list(parse(in_june[name]))


@pytest.mark.django_db
def test_seed_demo_creates_the_site_its_deck_and_a_folder_profile():
    # given an empty database
    # when the demo is seeded
    output = _seed("--days", "2")
    # then a Kyiv node with its 3CX, trunk route, groups and thirty subscribers exist
    device = Device.objects.select_related("node", "default_operator", "default_plan").get()
    assert (device.node.name, device.node.country, device.name, device.type) == \
        ("Kyiv", "UA", "PBX1", "3cx")
    assert (device.timezone, device.access_code, device.country_code, device.area_code,
            device.extension_length) == ("Europe/Kyiv", "9", "380", "44", 3)
    route = Route.objects.get()
    assert (route.device, route.name, route.operator) == (device, "10000", device.default_operator)
    assert device.default_operator.currency == "UAH"
    assert device.default_plan.name == "Basic"
    assert SubscriberGroup.objects.get(name="Sales East").parent.name == "Sales"
    assert Subscriber.objects.count() == 30 == len(STAFF)
    # and extensions 201-230 are held from the first day; 210 changes hands in the period
    numbers = PhoneNumber.objects.all()
    assert {n.dn for n in numbers} == {str(n) for n in range(201, 231)}
    assert {n.valid_from for n in numbers if n.dn != REASSIGNED_DN} == {date(2025, 6, 16)}
    old, new = PhoneNumber.objects.filter(dn=REASSIGNED_DN).order_by("valid_from")
    assert old.valid_to == date(2025, 6, 16) and new.valid_from == date(2025, 6, 17)
    assert new.subscriber.full_name == REASSIGNED_TO != old.subscriber.full_name
    # and no extension is an emergency number: 112 dialled from the office is a service call
    plan = DialPlan.from_device(device)
    assert parse_number("112", plan, {n.dn for n in numbers})[1] == Kind.SERVICE
    # and the operator has a few hundred codes; tariffs group many codes and are priced
    codes = PhoneCode.objects.filter(operator=device.default_operator)
    assert 200 <= codes.count() <= 600
    assert set(codes.values_list("call_type", flat=True)) == {3, 4, 5, 6}
    assert codes.get(code="38044").tariff.call_type == CallType.LOCAL
    assert codes.filter(tariff__name="Ukraine mobile").count() >= 8
    assert Tariff.objects.filter(first_interval=1, next_interval=1).exists()
    assert TariffPrice.objects.count() == Tariff.objects.count()
    assert set(Tariff.objects.values_list("account_description", flat=True)) == {
        "Local calls", "Long-distance calls", "Mobile calls", "International calls"}
    # and the observer profile watches the default CDR folder, which holds a file a day
    profile = ObserverProfile.objects.get()
    cdr_dir = settings.DATA_DIR / "demo" / "cdr"
    assert (profile.name, profile.source, profile.device) == ("PBX1", "folder", device)
    assert profile.settings == {"path": str(cdr_dir.resolve())}
    assert sorted(p.name[:10] for p in cdr_dir.iterdir()) == ["cdr-250616", "cdr-250617"]
    assert "30 subscribers" in output and "2 CDR files" in output


@pytest.mark.django_db
def test_ingesting_the_demo_files_stores_priced_calls_of_every_type(tmp_path):
    # given the demo seeded with two working days of files
    _seed("--days", "2", "--cdr-dir", str(tmp_path / "cdr"))
    files = sorted(str(p) for p in (tmp_path / "cdr").iterdir())
    expected, _ = _parsed(demo_cdr(period=Period(date(2025, 6, 16), date(2025, 6, 17)), seed=1))
    # when the files are ingested through the profile
    out = StringIO()
    call_command("ingest", "--profile", "PBX1", *files, stdout=out)
    summary = json.loads(out.getvalue())
    # then every call is stored and the deliberate lines are rejected
    assert summary == {"received": len(expected) + 2, "calls": len(expected),
                       "duplicates": 0, "rejected": 2}
    assert ObserverProfile.objects.get().rejects.count() == 2
    # and nearly every outgoing call is priced, and local, long-distance, international and
    # mobile calls all occur
    outgoing = Call.objects.filter(direction=Direction.OUTGOING)
    assert outgoing.exclude(cost=None).count() / outgoing.count() > 0.95
    assert {3, 4, 5, 6} <= set(Call.objects.values_list("call_type", flat=True))
    assert Call.objects.filter(direction=Direction.INCOMING).exists()
    assert Call.objects.filter(direction=Direction.INTERNAL, cost=None).exists()
    # and the reassigned number's calls go to the holder of the day (R6.3)
    holders = {(c.local_day, c.subscriber.full_name) for c in
               Call.objects.filter(extension=REASSIGNED_DN).select_related("subscriber")
               .annotate(local_day=TruncDate("start", tzinfo=KYIV))}
    assert holders == {(date(2025, 6, 16), "Maksym Oliinyk"), (date(2025, 6, 17), REASSIGNED_TO)}
    # when the same files are ingested again
    again = StringIO()
    call_command("ingest", "--profile", "PBX1", *files, stdout=again)
    # then nothing is added
    assert json.loads(again.getvalue())["calls"] == 0
    assert Call.objects.count() == len(expected)


@pytest.mark.django_db
def test_seeding_again_does_nothing_and_force_only_rewrites_the_files(tmp_path):
    # given a seeded demo whose files the observer has already taken away
    cdr_dir = tmp_path / "cdr"
    _seed("--days", "1", "--cdr-dir", str(cdr_dir))
    first = {p.name: p.read_bytes() for p in cdr_dir.iterdir()}
    for path in cdr_dir.iterdir():
        path.unlink()
    rows = (Node.objects.count(), Subscriber.objects.count(), PhoneCode.objects.count())
    # when it is seeded again
    output = _seed("--days", "1")
    # then it says so and changes nothing
    assert "already exists" in output
    assert list(cdr_dir.iterdir()) == []
    # when it is seeded again with --force (no --cdr-dir: the profile's folder is used)
    _seed("--days", "1", "--force")
    # then the same files are written again and no row is added
    assert {p.name: p.read_bytes() for p in cdr_dir.iterdir()} == first
    assert (Node.objects.count(), Subscriber.objects.count(), PhoneCode.objects.count()) == rows
