"""R11.3: every report's rows and totals over the calls of tests/reports/conftest.py (two
currencies, a group tree of three levels, two zones), summed by hand there."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Call, Charge, Payment
from reports import selectors
from reports.catalogue import REPORTS
from tariffs.choices import CallType, Direction
from tests.reports.conftest import JANUARY, _call

D = Decimal
TOTALS = [
    {"currency": "", "calls": 1, "seconds": 200, "cost": D("0.0000")},
    {"currency": "UAH", "calls": 6, "seconds": 305, "cost": D("5.2500")},
    {"currency": "USD", "calls": 3, "seconds": 945, "cost": D("2.1000")},
]


def rows(report, *extra):
    """The rows as tuples (key, calls, seconds, cost as text, currency, *extra)."""
    return [(r["key"], r["calls"], r["seconds"], f"{r['cost']:f}", r["currency"],
             *(r[e] for e in extra)) for r in report.rows]


def test_by_subscriber_has_a_row_per_subscriber_and_currency(calls):
    # when the January report by subscriber is run
    report = selectors.by_subscriber(filters=JANUARY)
    # then each subscriber has a row per currency, the unknown number last
    assert rows(report) == [
        ("Ivan Petrenko", 1, 200, "0.0000", ""),
        ("Ivan Petrenko", 3, 185, "2.7500", "UAH"),
        ("Maria Shevchenko", 1, 600, "1.2500", "USD"),
        ("Olena Koval", 1, 0, "0.0000", "UAH"),
        ("Olena Koval", 1, 300, "0.7500", "USD"),
        ("Petro Bondar", 1, 90, "2.0000", "UAH"),
        ("Taras Melnyk", 1, 45, "0.1000", "USD"),
        (None, 1, 30, "0.5000", "UAH"),
    ]
    assert report.rows[0]["ref"] == calls.site.subscriber.pk
    # and the totals are per currency, never one sum of money
    assert report.totals == TOTALS


def test_by_group_subtotals_run_up_a_tree_of_three_levels(calls):
    # when the report by group is run
    report = selectors.by_group(filters=JANUARY)
    # then Sales holds its own calls and those of Inside and Key accounts below it
    assert rows(report, "level") == [
        ("Sales", 1, 200, "0.0000", "", 0),
        ("Sales", 5, 275, "4.7500", "UAH", 0),
        ("Sales", 2, 900, "2.0000", "USD", 0),
        ("Sales / Inside", 1, 90, "2.0000", "UAH", 1),
        ("Sales / Inside", 1, 600, "1.2500", "USD", 1),
        ("Sales / Inside / Key accounts", 1, 600, "1.2500", "USD", 2),
        ("Support", 1, 45, "0.1000", "USD", 0),
        (None, 1, 30, "0.5000", "UAH", 0),
    ]
    assert report.totals == TOTALS


def test_by_group_filtered_by_a_group_starts_the_tree_there(calls):
    # when the report by group is run for Inside
    report = selectors.by_group(filters={**JANUARY, "group": calls.inside})
    # then Inside is the top, with Key accounts under it, and nothing else is counted
    assert rows(report, "level") == [
        ("Sales / Inside", 1, 90, "2.0000", "UAH", 0),
        ("Sales / Inside", 1, 600, "1.2500", "USD", 0),
        ("Sales / Inside / Key accounts", 1, 600, "1.2500", "USD", 1),
    ]
    assert report.totals == [{"currency": "UAH", "calls": 1, "seconds": 90, "cost": D("2.0000")},
                             {"currency": "USD", "calls": 1, "seconds": 600, "cost": D("1.2500")}]


def test_by_destination_is_by_tariff_name(calls):
    report = selectors.by_destination(filters=JANUARY)
    assert rows(report) == [
        ("Kyiv", 3, 155, "1.7500", "UAH"),
        ("Mobile", 2, 60, "1.5000", "UAH"),
        ("Poland", 3, 945, "2.1000", "USD"),
        ("Ukraine", 1, 90, "2.0000", "UAH"),
        (None, 1, 200, "0.0000", ""),
    ]
    assert report.totals == TOTALS


def test_by_call_type_is_in_the_types_order(calls):
    report = selectors.by_call_type(filters=JANUARY)
    assert rows(report) == [
        ("incoming", 1, 200, "0.0000", ""),
        ("local", 3, 155, "1.7500", "UAH"),
        ("long-distance", 1, 90, "2.0000", "UAH"),
        ("international", 3, 945, "2.1000", "USD"),
        ("mobile", 2, 60, "1.5000", "UAH"),
    ]


def test_by_operator_and_by_route(calls):
    assert rows(selectors.by_operator(filters=JANUARY)) == [
        ("Intercall", 3, 945, "2.1000", "USD"),
        ("Ukrtelecom", 6, 305, "5.2500", "UAH"),
        (None, 1, 200, "0.0000", ""),
    ]
    assert rows(selectors.by_route(filters=JANUARY)) == [
        ("KyivPBX/10001", 6, 305, "5.2500", "UAH"),
        ("KyivPBX/10001", 2, 900, "2.0000", "USD"),
        ("LondonPBX/10001", 1, 45, "0.1000", "USD"),
        (None, 1, 200, "0.0000", ""),
    ]


def test_by_day_is_the_devices_calendar(calls):
    # when the report by day is run
    report = selectors.by_day(filters=JANUARY)
    # then c4 (22:30 UTC on the 10th) is on the 11th in Kyiv, while c10 (23:30 UTC on the
    # 10th) stays on the 10th in London
    assert rows(report) == [
        (date(2024, 1, 10), 2, 180, "2.5000", "UAH"),
        (date(2024, 1, 10), 2, 345, "0.8500", "USD"),
        (date(2024, 1, 11), 1, 200, "0.0000", ""),
        (date(2024, 1, 11), 3, 120, "2.5000", "UAH"),
        (date(2024, 1, 11), 1, 600, "1.2500", "USD"),
        (date(2024, 1, 12), 1, 5, "0.2500", "UAH"),
    ]
    assert report.totals == TOTALS


def test_the_period_is_cut_on_the_devices_calendar(calls):
    # when only the 11th is asked for
    report = selectors.by_subscriber(filters={"day_from": date(2024, 1, 11),
                                              "day_to": date(2024, 1, 11)})
    # then Petro's call at 00:30 Kyiv time (22:30 UTC on the 10th) is in it
    assert ("Petro Bondar", 1, 90, "2.0000", "UAH") in rows(report)
    # and London's 23:30 on the 10th is not
    assert "Taras Melnyk" not in [r["key"] for r in report.rows]


def test_by_hour_is_the_devices_clock(calls):
    report = selectors.by_hour(filters=JANUARY)
    assert rows(report) == [
        (0, 1, 90, "2.0000", "UAH"),
        (9, 1, 5, "0.2500", "UAH"),
        (10, 2, 180, "2.5000", "UAH"),
        (10, 1, 300, "0.7500", "USD"),
        (11, 1, 30, "0.5000", "UAH"),
        (11, 1, 600, "1.2500", "USD"),
        (12, 1, 200, "0.0000", ""),
        (12, 1, 0, "0.0000", "UAH"),
        (23, 1, 45, "0.1000", "USD"),
    ]


def test_busiest_hours_count_calls_and_calls_at_once(calls):
    # when the 3 busiest hours are asked for
    report = selectors.busiest_hours(filters={**JANUARY, "top": 3})
    # then 10:00 on the 10th (3 calls, c1 and c2 at once) comes first; at 11:00 on the 11th
    # c5 ends when c6 starts (one at a time); at 12:00 c8 had no talk time
    assert rows(report, "concurrent") == [
        (datetime(2024, 1, 10, 10), 2, 180, "2.5000", "UAH", 2),
        (datetime(2024, 1, 10, 10), 1, 300, "0.7500", "USD", 2),
        (datetime(2024, 1, 11, 11), 1, 30, "0.5000", "UAH", 1),
        (datetime(2024, 1, 11, 11), 1, 600, "1.2500", "USD", 1),
        (datetime(2024, 1, 11, 12), 1, 200, "0.0000", "", 1),
        (datetime(2024, 1, 11, 12), 1, 0, "0.0000", "UAH", 1),
    ]
    assert [t["concurrent"] for t in report.totals] == [2, 2, 2]


def test_calls_at_once_include_a_call_carried_in_from_the_hour_before(site):
    # given a call from 09:50 to 10:20 (Kyiv), one from 10:05 to 10:10, one from 10:15 to
    # 10:16, and one from 09:00 to 09:01
    def at(hour, minute):
        return datetime(2024, 3, 1, hour - 2, minute, tzinfo=UTC)
    Call.objects.bulk_create([
        _call(1, site.device, at(9, 50), 30 * 60, CallType.LOCAL),
        _call(2, site.device, at(10, 5), 5 * 60, CallType.LOCAL),
        _call(3, site.device, at(10, 15), 60, CallType.LOCAL),
        _call(4, site.device, at(9, 0), 60, CallType.LOCAL),
    ])
    # when the busiest hours of the day are asked for
    report = selectors.busiest_hours(filters={"day_from": date(2024, 3, 1),
                                              "day_to": date(2024, 3, 1)})
    # then 10:00 had two calls at once (the one carried in, with each of the others), and
    # 09:00 had one at a time though it had two calls
    assert [(r["key"], r["calls"], r["concurrent"]) for r in report.rows] == [
        (datetime(2024, 3, 1, 9), 2, 1), (datetime(2024, 3, 1, 10), 2, 2)]


def test_top_subscribers_are_the_costliest_in_each_currency(calls):
    report = selectors.top_subscribers(filters={**JANUARY, "top": 3})
    assert rows(report) == [
        ("Ivan Petrenko", 1, 200, "0.0000", ""),
        ("Ivan Petrenko", 3, 185, "2.7500", "UAH"),
        ("Petro Bondar", 1, 90, "2.0000", "UAH"),
        ("Olena Koval", 1, 0, "0.0000", "UAH"),
        ("Maria Shevchenko", 1, 600, "1.2500", "USD"),
        ("Olena Koval", 1, 300, "0.7500", "USD"),
        ("Taras Melnyk", 1, 45, "0.1000", "USD"),
    ]
    # and the totals are those of all the calls, not only of the top
    assert report.totals == TOTALS


def test_top_destinations_and_numbers_keep_n_per_currency(calls):
    assert rows(selectors.top_destinations(filters={**JANUARY, "top": 2})) == [
        ("Ukraine", 1, 90, "2.0000", "UAH"),
        ("Kyiv", 3, 155, "1.7500", "UAH"),
        ("Poland", 3, 945, "2.1000", "USD"),
    ]
    assert rows(selectors.top_numbers(filters={**JANUARY, "top": 1})) == [
        ("0501112233", 1, 200, "0.0000", ""),
        ("380321234567", 1, 90, "2.0000", "UAH"),
        ("48221234567", 3, 945, "2.1000", "USD"),
    ]


def test_unknown_numbers_unanswered_and_short_calls(calls):
    unknown = selectors.unknown_numbers(filters=JANUARY)
    assert rows(unknown) == [("555", 1, 30, "0.5000", "UAH")]
    assert unknown.totals == [{"currency": "UAH", "calls": 1, "seconds": 30, "cost": D("0.5000")}]
    assert rows(selectors.unanswered(filters=JANUARY)) == [("Olena Koval", 1, 0, "0.0000", "UAH")]
    assert rows(selectors.short_calls(filters=JANUARY)) == [("Ivan Petrenko", 1, 5, "0.2500", "UAH")]


@pytest.mark.parametrize(("narrowed", "expected"), [
    ("device", ["Taras Melnyk"]),
    ("node", ["Taras Melnyk"]),
    ("group", ["Maria Shevchenko", "Petro Bondar"]),
    ("subscriber", ["Olena Koval"]),
    ("call_type", ["Maria Shevchenko", "Olena Koval", "Taras Melnyk"]),
    ("direction", ["Ivan Petrenko"]),
])
def test_the_filters_narrow_the_calls(calls, narrowed, expected):
    # given one filter
    value = {"device": calls.london, "node": calls.london.node, "group": calls.inside,
             "subscriber": calls.site.colleague, "call_type": CallType.INTERNATIONAL,
             "direction": Direction.INCOMING}[narrowed]
    # when the report by subscriber is run with it
    report = selectors.by_subscriber(filters={**JANUARY, narrowed: value})
    # then only the calls it names are counted
    assert sorted({r["key"] for r in report.rows}) == expected


def test_charges_and_payments_by_month_and_currency(calls):
    # given charges in UAH (Ivan) and USD (Maria), and payments: Ivan's count in UAH,
    # Maria's in USD (her account's), Taras's (never charged) in the default UAH
    ivan, maria, taras = calls.site.subscriber, calls.maria, calls.taras
    for subscriber, start, name, amount, currency in [
            (ivan, date(2024, 1, 1), "Calls", "2.7500", "UAH"),
            (ivan, date(2024, 1, 1), "Line rent", "50.0000", "UAH"),
            (ivan, date(2024, 2, 1), "Calls", "9.0000", "UAH"),
            (maria, date(2024, 1, 1), "Calls", "1.2500", "USD")]:
        end = start.replace(day=28)
        Charge.objects.create(subscriber=subscriber, period_start=start, period_end=end,
                              service_name=name, amount=D(amount), currency=currency)
    for subscriber, day, amount in [(ivan, date(2024, 1, 15), "100.00"),
                                    (maria, date(2024, 1, 20), "5.00"),
                                    (taras, date(2024, 1, 5), "10.00"),
                                    (ivan, date(2024, 3, 1), "7.00")]:
        Payment.objects.create(subscriber=subscriber, date=day, amount=D(amount))
    # when January and February are reported
    report = selectors.charges_payments(filters={"day_from": date(2024, 1, 1),
                                                 "day_to": date(2024, 2, 29)})
    # then each month has a row per currency, and March's payment is not in it
    assert [(r["key"], f"{r['charges']:f}", f"{r['payments']:f}", f"{r['balance']:f}",
             r["currency"]) for r in report.rows] == [
        (date(2024, 1, 1), "52.7500", "110.0000", "57.2500", "UAH"),
        (date(2024, 1, 1), "1.2500", "5.0000", "3.7500", "USD"),
        (date(2024, 2, 1), "9.0000", "0.0000", "-9.0000", "UAH"),
    ]
    assert report.totals == [
        {"currency": "UAH", "charges": D("61.75"), "payments": D("110"), "balance": D("48.25")},
        {"currency": "USD", "charges": D("1.25"), "payments": D("5"), "balance": D("3.75")}]
    # and a group counts only its subtree's accounts (Maria is in Key accounts, below Inside)
    inside = selectors.charges_payments(filters={"day_from": date(2024, 1, 1),
                                                 "day_to": date(2024, 1, 31),
                                                 "group": calls.inside})
    assert [(r["currency"], r["charges"], r["payments"]) for r in inside.rows] == [
        ("USD", D("1.25"), D("5"))]


def test_every_report_of_the_catalogue_runs_on_no_calls(db):
    # given no calls at all, when each report is run, then it has no rows and no totals
    for kind in REPORTS.values():
        report = kind.run(dict(JANUARY))
        assert (report.name, report.rows, report.totals) == (kind.name, [], [])
