"""R8.1: the month's usage (billing/usage.py), the running totals that limits are checked
against: storing calls adds to them in the same transaction, a repeated delivery adds
nothing, the month is the device's, incoming and internal calls use no budget, and
re-rating brings them back to the sums of the calls."""
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from billing.models import Call, MonthUsage
from billing.rerating import calls_rerate
from tariffs.choices import CallType, Direction
from tests.billing.test_accounts import may  # noqa: F401 (the fixture)
from tests.conftest import store_calls
from tests.factories import call_record

pytestmark = pytest.mark.django_db


def usage_of(subscriber, month):
    return {(row.call_type, row.currency): (row.calls, row.seconds, row.cost)
            for row in MonthUsage.objects.filter(subscriber=subscriber, month=month)}


def test_stored_calls_add_to_their_months_usage_in_the_devices_zone(site, may):  # noqa: F811
    # given the calls of `may` stored (the "edge" call is 31 May 21:30 UTC, 1 June in Kyiv)
    # then May holds four calls of the subscriber (Lviv and the mobile long-distance by
    # this dial plan), June the edge one
    assert usage_of(site.subscriber, date(2023, 5, 1)) == {
        (CallType.LOCAL, "UAH"): (2, 91, Decimal("1.5000")),
        (CallType.LONG_DISTANCE, "UAH"): (2, 150, Decimal("2.7000"))}
    assert usage_of(site.subscriber, date(2023, 6, 1)) == {
        (CallType.LOCAL, "UAH"): (1, 60, Decimal("0.5000"))}
    assert usage_of(site.colleague, date(2023, 5, 1)) == {
        (CallType.LOCAL, "UAH"): (1, 60, Decimal("0.5000"))}


def test_a_repeated_delivery_adds_nothing(site, may):  # noqa: F811
    # given May's usage
    before = usage_of(site.subscriber, date(2023, 5, 1))
    # when the same records come again, with one new call
    stored = store_calls(device=site.device, records=[
        call_record("k1", datetime(2023, 5, 10, 10), "90441234567", 61),
        call_record("k3", datetime(2023, 5, 20, 10), "90441234567", 10)])
    # then only the new call is added, and the result names its subscriber
    after = usage_of(site.subscriber, date(2023, 5, 1))
    assert after[(CallType.LOCAL, "UAH")] == (3, 101, Decimal("2.0000"))
    assert {key: value for key, value in after.items() if key[0] != CallType.LOCAL} == {
        key: value for key, value in before.items() if key[0] != CallType.LOCAL}
    assert stored.subscribers == {site.subscriber.pk}


def test_incoming_and_internal_calls_use_no_budget(site):
    # when an incoming and an internal call of the subscriber are stored
    stored = store_calls(device=site.device, records=[
        call_record("in", datetime(2023, 5, 10, 10), "0501234567", 600,
                    direction=Direction.INCOMING),
        call_record("int", datetime(2023, 5, 10, 11), "102", 600)])
    # then no usage is counted
    assert Call.objects.count() == 2
    assert not MonthUsage.objects.exists()
    assert stored.subscribers == set()


def test_rerating_brings_the_usage_back_to_the_sums_of_the_calls(site, may):  # noqa: F811
    # when Kyiv changes price and May is rated again
    site.set_price(site.kyiv, "0.33")
    calls_rerate(date_from=date(2023, 5, 1), date_to=date(2023, 6, 30), batch_size=2)
    # then each subscriber's usage per call type equals its outgoing calls' sums
    for subscriber in (site.subscriber, site.colleague):
        for month, (start, end) in {date(2023, 5, 1): (datetime(2023, 4, 30, 21),
                                                       datetime(2023, 5, 31, 21)),
                                    date(2023, 6, 1): (datetime(2023, 5, 31, 21),
                                                       datetime(2023, 6, 30, 21))}.items():
            calls = (Call.objects.filter(subscriber=subscriber, direction=Direction.OUTGOING,
                                         start__gte=start.replace(tzinfo=None).astimezone(),
                                         start__lt=end.astimezone())
                     .values("call_type", "currency")
                     .annotate(n=Count("id"), s=Sum("duration"), c=Sum("cost")))
            assert usage_of(subscriber, month) == {
                (row["call_type"], row["currency"]): (row["n"], row["s"], row["c"])
                for row in calls}
    assert usage_of(site.subscriber, date(2023, 5, 1))[(CallType.LOCAL, "UAH")] == (
        2, 91, Decimal("0.9900"))
