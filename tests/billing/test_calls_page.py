"""R11.2: the calls page (/calls/), its filters, its CSV export and the call detail page."""
import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Call
from tariffs.choices import CallType, Direction
from tests.factories import (
    DeviceFactory,
    OperatorFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffPlanFactory,
    priced_code,
)
from tests.observers.threecx_cdr import cdr_line

CSV_HEADER = ("start,device,subscriber,extension,dialled,normalized,direction,call_type,"
              "duration,billable_seconds,operator,code,tariff,cost,currency")


def make_call(*, device, key, start, subscriber=None, extension="101", dialled="",
              normalized="", direction=Direction.OUTGOING, call_type=CallType.LOCAL,
              duration=60, billable=60, operator=None, code="", tariff=None, cost=None,
              currency=""):
    return Call.objects.create(
        device=device, source_key=key, start=start, subscriber=subscriber, extension=extension,
        dialled=dialled, normalized=normalized, direction=direction, call_type=call_type,
        duration=duration, billable_seconds=billable, operator=operator, code=code,
        tariff=tariff, cost=None if cost is None else Decimal(cost), currency=currency,
    )


@pytest.fixture
def operator_client(client, django_user_model):
    user = django_user_model.objects.create(username="operator")
    client.force_login(user)
    return client


class Calls:
    """Five calls on the site's two devices (KyivPBX, LvivPBX); Olena Koval is in Support.

    c1 Kyiv PBX, Ivan (Sales), 2024-06-10 10:00 UTC, local, 1.00 UAH
    c2 Kyiv PBX, Olena (Support), 2024-06-12 10:00, international to London, 12.50 UAH
    c3 Lviv PBX, incoming from a mobile, nobody's number, 2024-06-15 23:30, not priced
    c4 Lviv PBX, outgoing from an unknown number, 2024-06-16 00:00, mobile, 0.40 UAH
    c5 Lviv PBX, Ivan, 2024-06-25 08:00, long distance, 3.00 UAH
    """

    def __init__(self, site, lviv):
        self.kyiv, self.lviv, self.operator = site.device, lviv, site.operator
        self.sales, self.ivan, self.olena = site.sales, site.subscriber, site.colleague
        self.support = SubscriberGroupFactory(name="Support")
        self.olena.group = self.support
        self.olena.save()
        self.tariff = site.priced_code(code="44", price="6.25", name="United Kingdom").tariff
        op = {"operator": self.operator, "currency": "UAH"}
        self.c1 = make_call(device=self.kyiv, key="c1", start=datetime(2024, 6, 10, 10, tzinfo=UTC),
                            subscriber=self.ivan, dialled="92345678", normalized="380442345678",
                            cost="1.00", **op)
        self.c2 = make_call(device=self.kyiv, key="c2", start=datetime(2024, 6, 12, 10, tzinfo=UTC),
                            subscriber=self.olena, extension="102", dialled="900442071234567",
                            normalized="442071234567", call_type=CallType.INTERNATIONAL,
                            duration=115, billable=120, code="44", tariff=self.tariff,
                            cost="12.50", **op)
        self.c3 = make_call(device=self.lviv, key="c3",
                            start=datetime(2024, 6, 15, 23, 30, tzinfo=UTC), extension="103",
                            dialled="+380501234567", normalized="380501234567",
                            direction=Direction.INCOMING, call_type=CallType.INCOMING)
        self.c4 = make_call(device=self.lviv, key="c4", start=datetime(2024, 6, 16, 0, 0, tzinfo=UTC),
                            extension="199", dialled="90671234567", normalized="380671234567",
                            call_type=CallType.MOBILE, cost="0.40", **op)
        self.c5 = make_call(device=self.lviv, key="c5", start=datetime(2024, 6, 25, 8, tzinfo=UTC),
                            subscriber=self.ivan, dialled="90322345678", normalized="380322345678",
                            call_type=CallType.LONG_DISTANCE, cost="3.00", **op)


@pytest.fixture
def calls(site, second_device):
    return Calls(site, second_device)


def listed(response):
    return {call.source_key for call in response.context["page"].object_list}


def test_anonymous_visitor_is_sent_to_the_login_page(client, db):
    # given nobody logged in
    # when the calls page and a call's page are requested
    listing = client.get("/calls/")
    detail = client.get("/calls/1/")
    # then both redirect to the login page, coming back afterwards
    assert (listing.status_code, listing["Location"]) == (302, "/accounts/login/?next=/calls/")
    assert (detail.status_code, detail["Location"]) == (302, "/accounts/login/?next=/calls/1/")


def test_page_lists_every_call_with_its_cost(operator_client, calls):
    # given five calls
    # when the page is opened without filters
    response = operator_client.get("/calls/")
    # then all five are listed, newest first, with their costs and totals
    assert response.status_code == 200
    assert [c.source_key for c in response.context["page"].object_list] == [
        "c5", "c4", "c3", "c2", "c1"]
    html = response.content.decode()
    assert "12.50 UAH" in html and "0.40 UAH" in html
    # 1.00 + 12.50 + 0.40 + 3.00 = 16.90
    assert response.context["totals"]["costs"] == [{"currency": "UAH", "cost": Decimal("16.90")}]
    assert "5 calls" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # whole days in the device's zone (Kyiv, UTC+3), both ends inclusive, as the page
        # shows the times: c3 (15 June 23:30 UTC) is on 16 June in Kyiv
        ({"date_from": "2024-06-12", "date_to": "2024-06-15"}, {"c2"}),
        ({"date_from": "2024-06-16"}, {"c3", "c4", "c5"}),
        ({"date_to": "2024-06-10"}, {"c1"}),
        ({"device": "kyiv"}, {"c1", "c2"}),
        ({"device": "lviv"}, {"c3", "c4", "c5"}),
        ({"subscriber": "ivan"}, {"c1", "c5"}),
        ({"group": "support"}, {"c2"}),
        ({"number": "2071234"}, {"c2"}),  # part of the dialled number
        ({"number": "199"}, {"c4"}),  # the extension
        ({"call_type": str(CallType.INTERNATIONAL)}, {"c2"}),
        ({"call_type": str(CallType.INCOMING)}, {"c3"}),
        ({"direction": str(Direction.INCOMING)}, {"c3"}),
        ({"cost_min": "3"}, {"c2", "c5"}),  # inclusive; unpriced calls are not "0"
        ({"cost_max": "1"}, {"c1", "c4"}),
        ({"cost_min": "0.5", "cost_max": "5"}, {"c1", "c5"}),
        # unknown numbers: outgoing calls nobody held the number of; incoming ones are not
        ({"unknown": "on"}, {"c4"}),
        ({"device": "lviv", "subscriber": "ivan"}, {"c5"}),
    ],
)
def test_each_filter_narrows_the_list(operator_client, calls, params, expected):
    # given five calls
    objects = {"kyiv": calls.kyiv, "lviv": calls.lviv, "ivan": calls.ivan,
               "support": calls.support}
    query = {k: (objects[v].pk if v in objects else v) for k, v in params.items()}
    # when the page is filtered
    response = operator_client.get("/calls/", query)
    # then only the matching calls are listed, and the totals count them
    assert response.status_code == 200
    assert listed(response) == expected
    assert response.context["totals"]["count"] == len(expected)


def test_group_filter_includes_the_groups_below_it(operator_client, calls):
    # given a team inside Support with a call of its own
    team = SubscriberGroupFactory(name="Support L2", node=calls.support.node,
                                  parent=calls.support)
    petro = SubscriberFactory(full_name="Petro", group=team)
    make_call(device=calls.kyiv, key="c6", start=datetime(2024, 6, 20, tzinfo=UTC),
              subscriber=petro)
    # when filtered by Support
    response = operator_client.get("/calls/", {"group": calls.support.pk})
    # then the team's call is listed with Support's own (R1.3: groups form a tree)
    assert listed(response) == {"c2", "c6"}


def test_period_ending_before_it_starts_is_an_error_and_lists_nothing(operator_client, calls):
    # given five calls
    # when the period is given backwards
    response = operator_client.get("/calls/", {"date_from": "2024-06-20",
                                               "date_to": "2024-06-10"})
    # then the page says so and lists no call
    assert response.status_code == 200
    assert "The period ends before it starts." in response.content.decode()
    assert listed(response) == set()
    assert response.context["totals"]["count"] == 0


def test_csv_export_has_the_contract_header_and_one_row_per_call(operator_client, calls):
    # given five calls
    # when exported
    response = operator_client.get("/calls/", {"export": "csv"})
    # then it is a CSV attachment: the fixed header, then one row per call
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="calls.csv"'
    text = response.content.decode()
    assert text.splitlines()[0] == CSV_HEADER
    rows = {row["dialled"]: row for row in csv.DictReader(io.StringIO(text))}
    assert len(rows) == 5
    # and each row shows the call in its device's zone, cost to the minor unit
    assert rows["900442071234567"] == {
        "start": "2024-06-12T13:00:00+03:00", "device": "KyivPBX", "subscriber": "Olena Koval",
        "extension": "102", "dialled": "900442071234567", "normalized": "442071234567",
        "direction": "outgoing", "call_type": "5", "duration": "115",
        "billable_seconds": "120", "operator": calls.operator.name, "code": "44",
        "tariff": "United Kingdom", "cost": "12.50", "currency": "UAH",
    }
    assert rows["+380501234567"]["cost"] == ""  # not priced: empty, not 0


@pytest.mark.parametrize(
    ("currency", "stored", "exported"),
    [("UAH", "1.0000", "1.00"), ("JPY", "150.0000", "150"), ("KWD", "1.2345", "1.235")],
)
def test_csv_cost_is_formatted_to_the_currency_minor_unit(operator_client, db, currency,
                                                          stored, exported):
    # given a call costed in `currency`
    device = DeviceFactory()
    make_call(device=device, key="x", start=datetime(2024, 6, 17, tzinfo=UTC), cost=stored,
              currency=currency, operator=OperatorFactory(currency=currency))
    # when exported
    response = operator_client.get("/calls/", {"export": "csv"})
    # then the cost has the currency's minor unit, rounded half up
    (row,) = csv.DictReader(io.StringIO(response.content.decode()))
    assert (row["cost"], row["currency"]) == (exported, currency)


def test_csv_export_follows_the_filters(operator_client, calls):
    # given five calls
    # when the Kyiv device's calls are exported
    response = operator_client.get("/calls/", {"export": "csv", "device": calls.kyiv.pk})
    # then only its two calls are in the file
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(row["dialled"] for row in rows) == ["900442071234567", "92345678"]


def test_totals_are_kept_per_currency(operator_client, calls):
    # given, besides the UAH calls, two calls costed in EUR
    eur = OperatorFactory(currency="EUR")
    for key, cost in (("e1", "0.25"), ("e2", "1.10")):
        make_call(device=calls.kyiv, key=key, start=datetime(2024, 6, 20, tzinfo=UTC),
                  operator=eur, cost=cost, currency="EUR")
    # when the page is shown
    response = operator_client.get("/calls/")
    # then UAH and EUR are summed apart, never into one figure
    # EUR: 0.25 + 1.10 = 1.35; UAH: 1.00 + 12.50 + 0.40 + 3.00 = 16.90
    assert response.context["totals"]["costs"] == [
        {"currency": "EUR", "cost": Decimal("1.35")},
        {"currency": "UAH", "cost": Decimal("16.90")},
    ]
    assert "1.35 EUR" in response.content.decode()
    assert "16.90 UAH" in response.content.decode()


def test_page_shows_cost_to_the_currency_minor_unit(operator_client, db):
    # given calls costed in KWD (three places) and JPY (none)
    device = DeviceFactory()
    make_call(device=device, key="k", start=datetime(2024, 6, 17, tzinfo=UTC), cost="1.2345",
              currency="KWD")
    make_call(device=device, key="j", start=datetime(2024, 6, 18, tzinfo=UTC), cost="150",
              currency="JPY")
    # when the page is shown
    html = operator_client.get("/calls/").content.decode()
    # then each cost is written as the export writes it (one money rule, STYLE rule 8)
    assert "1.235 KWD" in html
    assert "150 JPY" in html


def test_call_detail_explains_the_cost(operator_client, site):
    # given a call of Ivan's rated by the pipeline: Kyiv 38044 at 0.50/min, 61 s
    site.ingest(cdr_line())
    call = Call.objects.get()
    # when its page is opened
    response = operator_client.get(f"/calls/{call.pk}/")
    # then it shows the cost and the rule that produced it (0.50 * 120 / 60 = 1.00)
    html = response.content.decode()
    assert response.status_code == 200
    assert "1.00 UAH" in html
    assert ("code 38044 (Kyiv), tariff Kyiv; 61s billed as 120s (whole minutes 60/60) at "
            "0.5 UAH/min; = 1.00 UAH (rounded half up)") in html
    assert "Ivan Petrenko" in html
    # and the start in the device's zone next to UTC
    assert "2024-06-17 10:00:00 (Europe/Kyiv; 2024-06-17 07:00:00 UTC)" in html


def test_call_detail_of_a_missing_call_is_not_found(operator_client, db):
    # given no calls; when a call page is requested; then 404
    assert operator_client.get("/calls/999999/").status_code == 404


def _calls_for_query_count(n):
    device = DeviceFactory()
    operator = device.default_operator
    tariff = priced_code(operator=operator, plan=TariffPlanFactory(), code="380",
                         price="1.00").tariff
    for i in range(n):
        subscriber = SubscriberFactory(group=SubscriberGroupFactory())
        make_call(device=device, key=f"q{i}", start=datetime(2024, 6, 1, tzinfo=UTC),
                  subscriber=subscriber, operator=operator, tariff=tariff, code="380",
                  cost="1.00", currency="UAH")


@pytest.mark.parametrize("n", [5, 60])
def test_page_query_count_is_bounded(operator_client, db, django_assert_max_num_queries, n):
    # given n calls, each with its own subscriber and group
    _calls_for_query_count(n)
    # when the page is shown; then a fixed number of queries does it: session, user,
    # totals, totals per currency, page count, page rows, and the device, group and
    # subscriber choices
    with django_assert_max_num_queries(9):
        response = operator_client.get("/calls/")
    assert len(response.context["page"].object_list) == min(n, 50)


def test_page_query_count_does_not_grow_with_the_calls(operator_client, db):
    # given 5 calls, then 60
    counts = []
    for n in (5, 55):
        _calls_for_query_count(n)
        # when the page is shown
        with CaptureQueriesContext(connection) as queries:
            operator_client.get("/calls/")
        counts.append(len(queries))
    # then the same number of queries served 5 and 60 calls
    assert counts[0] == counts[1]
