"""R7.1, R7.2: charges from rated calls (billing/accounts.py), payments and balance, and
charges following re-rating (billing/rerating.py)."""
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from billing.accounts import balance, charges_recalculate, month_bounds, payment_create
from billing.models import Call, Charge, ChargeKind, PaymentType
from billing.rerating import calls_rerate
from observers.parsers.base import CallRecord
from observers.pipeline import profile_ingest
from tariffs.choices import Direction
from tariffs.models import Tariff, TariffPrice
from tariffs.services import operator_rates_changed
from tests.conftest import store_calls
from tests.factories import (
    DeviceFactory,
    ObserverProfileFactory,
    PhoneNumberFactory,
    SubscriberFactory,
    priced_code,
)
from tests.observers.threecx_cdr import cdr_file, cdr_line

pytestmark = pytest.mark.django_db

MAY = {"period_start": date(2023, 5, 1), "period_end": date(2023, 5, 31)}


def record(key, start, dialled, duration, extension="101"):
    return CallRecord(source_key=key, start=start, duration=duration,
                      direction=Direction.OUTGOING, extension=extension, dialled=dialled)


class Site:
    """A Kyiv PBX (Europe/Kyiv), 60/60 billing in UAH: Kyiv 0.50/min, Lviv 0.70/min and
    Mobile 1.00/min; Kyiv and Lviv share the description "Domestic calls". Subscriber
    `alice` holds 101, `bob` 102. Local times:

    k1     2023-05-10 10:00  alice  61 s Kyiv    120 s  1.00
    k2     2023-05-11 10:00  alice  30 s Kyiv     60 s  0.50
    l1     2023-05-12 10:00  alice  60 s Lviv     60 s  0.70
    m1     2023-05-13 10:00  alice  90 s Mobile  120 s  2.00
    b1     2023-05-14 10:00  bob    60 s Kyiv     60 s  0.50
    edge   2023-06-01 00:30  alice  60 s Kyiv  (May 31 21:30 UTC, but June in Kyiv) 0.50
    """

    def __init__(self):
        self.device = DeviceFactory()
        self.operator, self.plan = self.device.default_operator, self.device.default_plan
        self.kyiv = priced_code(operator=self.operator, plan=self.plan, code="38044",
                                price="0.50", name="Kyiv")
        self.lviv = priced_code(operator=self.operator, plan=self.plan, code="38032",
                                price="0.70", name="Lviv")
        self.mobile = priced_code(operator=self.operator, plan=self.plan, code="38050",
                                  price="1.00", name="Mobile")
        Tariff.objects.filter(pk__in=[self.kyiv.tariff_id, self.lviv.tariff_id]).update(
            account_description="Domestic calls")
        self.alice, self.bob = SubscriberFactory(), SubscriberFactory()
        PhoneNumberFactory(subscriber=self.alice, device=self.device, dn="101")
        PhoneNumberFactory(subscriber=self.bob, device=self.device, dn="102")
        store_calls(device=self.device, records=[
            record("k1", datetime(2023, 5, 10, 10), "90441234567", 61),
            record("k2", datetime(2023, 5, 11, 10), "90441234567", 30),
            record("l1", datetime(2023, 5, 12, 10), "90321234567", 60),
            record("m1", datetime(2023, 5, 13, 10), "90501234567", 90),
            record("b1", datetime(2023, 5, 14, 10), "90441234567", 60, extension="102"),
            record("edge", datetime(2023, 6, 1, 0, 30), "90441234567", 60),
        ])

    def set_price(self, phone_code, price):
        TariffPrice.objects.filter(tariff=phone_code.tariff, plan=self.plan).update(
            price_per_minute=Decimal(price))
        operator_rates_changed(operator_ids=[self.operator.pk])


def charges_of(subscriber, **period):
    """The subscriber's charges of a period (May unless told; collecting calls charges
    their months at once, June's edge call included)."""
    period = period or {"period_start": MAY["period_start"]}
    return {c.service_name: (c.amount, c.count)
            for c in Charge.objects.filter(subscriber=subscriber, **period)}


def test_tariffs_sharing_an_account_description_are_summed_into_one_charge():
    site = Site()

    charges_recalculate(**MAY)

    assert charges_of(site.alice) == {"Domestic calls": (Decimal("2.20"), 240),
                                      "Mobile": (Decimal("2.00"), 120)}
    assert charges_of(site.bob) == {"Domestic calls": (Decimal("0.50"), 60)}
    mobile = Charge.objects.get(subscriber=site.alice, service_name="Mobile", **MAY)
    assert mobile.tariff_id == site.mobile.tariff_id and mobile.kind == ChargeKind.CALL
    assert mobile.currency == "UAH"
    assert Charge.objects.get(subscriber=site.alice, service_name="Domestic calls",
                              **MAY).tariff is None


def test_a_call_counts_in_the_month_of_its_devices_local_date():
    site = Site()

    charges_recalculate(period_start=date(2023, 6, 1), period_end=date(2023, 6, 30))

    assert charges_of(site.alice, period_start=date(2023, 6, 1)) == {
        "Domestic calls": (Decimal("0.50"), 60)}


def test_recalculating_again_neither_doubles_nor_renews_the_charges():
    site = Site()
    charges_recalculate(**MAY)
    before = {c.pk: c.created_at for c in Charge.objects.all()}

    charges_recalculate(**MAY)
    charges_recalculate(subscriber=site.alice, **MAY)

    assert {c.pk: c.created_at for c in Charge.objects.all()} == before
    assert charges_of(site.alice)["Domestic calls"] == (Decimal("2.20"), 240)


def test_recalculating_one_subscriber_leaves_the_others_alone():
    site = Site()
    charges_recalculate(**MAY)
    Call.objects.filter(source_key="b1").delete()

    charges_recalculate(subscriber=site.alice, **MAY)
    assert charges_of(site.bob) == {"Domestic calls": (Decimal("0.50"), 60)}

    charges_recalculate(**MAY)
    assert charges_of(site.bob) == {}


def test_charges_equal_the_rated_calls_to_the_minor_unit_after_a_rerating():
    site = Site()
    charges_recalculate(**MAY)

    site.set_price(site.kyiv, "0.33")
    site.set_price(site.mobile, "1.17")
    calls_rerate(date_from=date(2023, 5, 1), date_to=date(2023, 6, 30), batch_size=2)

    for subscriber in (site.alice, site.bob):
        start, end = month_bounds(date(2023, 5, 1))
        calls = Call.objects.filter(subscriber=subscriber, start__lt=datetime(2023, 5, 31, 21, tzinfo=UTC),
                                    cost__isnull=False)
        charged = Charge.objects.filter(subscriber=subscriber, period_start=start,
                                        period_end=end).aggregate(s=Sum("amount"))["s"]
        assert charged == calls.aggregate(s=Sum("cost"))["s"]
    assert charges_of(site.alice, period_start=date(2023, 5, 1)) == {
        "Domestic calls": (Decimal("0.99") + Decimal("0.70"), 240),
        "Mobile": (Decimal("2.34"), 120)}
    assert Charge.objects.filter(subscriber=site.alice).count() == 3  # May (2) and June (1)


def test_a_call_moved_to_another_subscriber_by_a_rerating_moves_its_charge():
    site = Site()
    charges_recalculate(**MAY)
    number = site.bob.numbers.get()
    number.valid_from = date(2023, 5, 20)
    number.save()
    carol = SubscriberFactory()
    PhoneNumberFactory(subscriber=carol, device=site.device, dn="102",
                       valid_from=date(2023, 1, 1), valid_to=date(2023, 5, 19))

    calls_rerate(date_from=date(2023, 5, 1), date_to=date(2023, 5, 31))

    assert charges_of(site.bob) == {}
    assert charges_of(carol) == {"Domestic calls": (Decimal("0.50"), 60)}


def test_balance_is_payments_minus_charges():
    site = Site()
    charges_recalculate(**MAY)

    payment = payment_create(subscriber=site.alice, amount=Decimal("370.00"),
                             day=date(2023, 5, 17), type=PaymentType.INVOICE, bank="PrivatBank")

    assert payment.type == PaymentType.INVOICE and payment.bank == "PrivatBank"
    # May's charges (4.20) and June's edge call (0.50), charged when it was collected
    assert balance(site.alice) == Decimal("370.00") - Decimal("4.20") - Decimal("0.50")
    assert balance(site.bob) == Decimal("-0.50")


@pytest.mark.parametrize(("amount", "type_"), [("0", 0), ("-1", 0), ("1.005", 0), ("1", 4)])
def test_a_payment_must_be_positive_in_cents_and_of_a_known_type(amount, type_):
    with pytest.raises(ValueError):
        payment_create(subscriber=SubscriberFactory(), amount=Decimal(amount),
                       day=date(2023, 5, 1), type=type_)


def test_charges_recalculate_command_rebuilds_a_month():
    site = Site()
    out = StringIO()

    call_command("charges_recalculate", "--month", "2023-05", stdout=out)

    assert out.getvalue().strip() == "3 call charges for 2023-05"
    assert charges_of(site.alice)["Mobile"] == (Decimal("2.00"), 120)
    with pytest.raises(CommandError, match="not yyyy-mm"):
        call_command("charges_recalculate", "--month", "May")


def test_calls_collected_are_charged_at_once():
    # given a subscriber on extension 101 whose carrier prices Kyiv at 0.50/min
    profile = ObserverProfileFactory()
    device = profile.device
    number = PhoneNumberFactory(device=device, dn="101")
    priced_code(operator=device.default_operator, plan=device.default_plan, code="38044",
                price="0.50", tariff_name="Kyiv")
    # when two 61 s calls to Kyiv are collected
    profile_ingest(profile=profile, data=cdr_file(cdr_line(historyid="Call 1"),
                                                  cdr_line(historyid="Call 2")))
    # then the month's charge exists without any recalculation: 2 x (0.50 x 120 / 60) = 2.00,
    # 2 x 120 billed seconds
    charge = Charge.objects.get(subscriber=number.subscriber)
    assert (charge.amount, charge.count) == (Decimal("2.00"), 240)
    assert charge.period_start == date(2024, 6, 1)


def test_recurring_fees_are_charged_pro_rata_from_the_connection_date_and_once():
    # given a 90.00/month fee on plan Basic, valid from 2023; a subscriber connected long
    # ago and one connected on 21 May (11 of May's 31 days)
    from billing.models import RecurringService
    from tests.factories import TariffPlanFactory

    plan = TariffPlanFactory(name="Basic")
    RecurringService.objects.create(name="Subscription fee", amount=Decimal("90.00"),
                                    plan=plan, valid_from=date(2023, 1, 1))
    old = SubscriberFactory(plan=plan, connection_date=date(2020, 1, 1))
    new = SubscriberFactory(plan=plan, connection_date=date(2023, 5, 21))
    SubscriberFactory(plan=plan, connection_date=date(2023, 6, 2))  # not yet connected
    # when May is charged twice
    call_command("charge_recurring", "--month", "2023-05", stdout=StringIO())
    call_command("charge_recurring", "--month", "2023-05", stdout=StringIO())
    # then the old one pays 90.00, the new one 90.00 * 11 / 31 = 31.935... -> 31.94, once each
    fees = {c.subscriber_id: (c.amount, c.count) for c in Charge.objects.filter(
        kind=ChargeKind.RECURRING)}
    assert fees == {old.pk: (Decimal("90.00"), 31), new.pk: (Decimal("31.94"), 11)}
