"""R7.1, R7.2: charges from rated calls (billing/accounts.py), payments and balance, and
charges following re-rating (billing/rerating.py)."""
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from billing.accounts import balance, charges_recalculate, month_bounds, payment_create
from billing.models import Call, Charge, ChargeKind, PaymentType
from billing.rerating import calls_rerate
from tariffs.models import Tariff
from tests.conftest import store_calls
from tests.factories import PhoneNumberFactory, SubscriberFactory, call_record
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

MAY = {"period_start": date(2023, 5, 1), "period_end": date(2023, 5, 31)}


@pytest.fixture
def may(site):
    """The site's Kyiv code beside Lviv 38032 at 0.70/min and Mobile 38050 at 1.00/min
    (returned), Kyiv and Lviv sharing the description "Domestic calls", and these calls of
    its subscriber (101) and his colleague (102), local times:

    k1     2023-05-10 10:00  subscriber  61 s Kyiv    120 s  1.00
    k2     2023-05-11 10:00  subscriber  30 s Kyiv     60 s  0.50
    l1     2023-05-12 10:00  subscriber  60 s Lviv     60 s  0.70
    m1     2023-05-13 10:00  subscriber  90 s Mobile  120 s  2.00
    b1     2023-05-14 10:00  colleague   60 s Kyiv     60 s  0.50
    edge   2023-06-01 00:30  subscriber  60 s Kyiv  (May 31 21:30 UTC, but June in Kyiv) 0.50
    """
    codes = SimpleNamespace(lviv=site.priced_code(code="38032", price="0.70", name="Lviv"),
                            mobile=site.priced_code(code="38050", price="1.00", name="Mobile"))
    Tariff.objects.filter(pk__in=[site.kyiv.tariff_id, codes.lviv.tariff_id]).update(
        account_description="Domestic calls")
    store_calls(device=site.device, records=[
        call_record("k1", datetime(2023, 5, 10, 10), "90441234567", 61),
        call_record("k2", datetime(2023, 5, 11, 10), "90441234567", 30),
        call_record("l1", datetime(2023, 5, 12, 10), "90321234567", 60),
        call_record("m1", datetime(2023, 5, 13, 10), "90501234567", 90),
        call_record("b1", datetime(2023, 5, 14, 10), "90441234567", 60, extension="102"),
        call_record("edge", datetime(2023, 6, 1, 0, 30), "90441234567", 60),
    ])
    return codes


def charges_of(subscriber, **period):
    """The subscriber's charges of a period (May unless told; collecting calls charges
    their months at once, June's edge call included)."""
    period = period or {"period_start": MAY["period_start"]}
    return {c.service_name: (c.amount, c.count)
            for c in Charge.objects.filter(subscriber=subscriber, **period)}


def test_tariffs_sharing_an_account_description_are_summed_into_one_charge(site, may):
    # given May's calls
    # when May is charged
    charges_recalculate(**MAY)
    # then Kyiv and Lviv are one charge, "Domestic calls", with no tariff; Mobile its own
    assert charges_of(site.subscriber) == {"Domestic calls": (Decimal("2.20"), 240),
                                           "Mobile": (Decimal("2.00"), 120)}
    assert charges_of(site.colleague) == {"Domestic calls": (Decimal("0.50"), 60)}
    mobile = Charge.objects.get(subscriber=site.subscriber, service_name="Mobile", **MAY)
    assert mobile.tariff_id == may.mobile.tariff_id and mobile.kind == ChargeKind.CALL
    assert mobile.currency == "UAH"
    assert Charge.objects.get(subscriber=site.subscriber, service_name="Domestic calls",
                              **MAY).tariff is None


def test_a_call_counts_in_the_month_of_its_devices_local_date(site, may):
    # given the edge call, 31 May in UTC but 1 June in Kyiv
    # when June is charged
    charges_recalculate(period_start=date(2023, 6, 1), period_end=date(2023, 6, 30))
    # then it is June's
    assert charges_of(site.subscriber, period_start=date(2023, 6, 1)) == {
        "Domestic calls": (Decimal("0.50"), 60)}


def test_recalculating_again_neither_doubles_nor_renews_the_charges(site, may):
    # given May charged
    charges_recalculate(**MAY)
    before = {c.pk: c.created_at for c in Charge.objects.all()}
    # when it is charged again, for everyone and for the subscriber
    charges_recalculate(**MAY)
    charges_recalculate(subscriber=site.subscriber, **MAY)
    # then the charges are the same rows with the same sums
    assert {c.pk: c.created_at for c in Charge.objects.all()} == before
    assert charges_of(site.subscriber)["Domestic calls"] == (Decimal("2.20"), 240)


def test_recalculating_one_subscriber_leaves_the_others_alone(site, may):
    # given May charged, and then the colleague's call deleted
    charges_recalculate(**MAY)
    Call.objects.filter(source_key="b1").delete()
    # when only the subscriber is charged again, then the colleague's charge stays
    charges_recalculate(subscriber=site.subscriber, **MAY)
    assert charges_of(site.colleague) == {"Domestic calls": (Decimal("0.50"), 60)}
    # and when everyone is, it goes
    charges_recalculate(**MAY)
    assert charges_of(site.colleague) == {}


def test_charges_equal_the_rated_calls_to_the_minor_unit_after_a_rerating(site, may):
    # given May charged
    charges_recalculate(**MAY)
    # when Kyiv and Mobile change price and May and June are rated again
    site.set_price(site.kyiv, "0.33")
    site.set_price(may.mobile, "1.17")
    calls_rerate(date_from=date(2023, 5, 1), date_to=date(2023, 6, 30), batch_size=2)
    # then each one's May charges add up to the costs of May's calls
    for subscriber in (site.subscriber, site.colleague):
        start, end = month_bounds(date(2023, 5, 1))
        calls = Call.objects.filter(subscriber=subscriber, start__lt=datetime(2023, 5, 31, 21, tzinfo=UTC),
                                    cost__isnull=False)
        charged = Charge.objects.filter(subscriber=subscriber, period_start=start,
                                        period_end=end).aggregate(s=Sum("amount"))["s"]
        assert charged == calls.aggregate(s=Sum("cost"))["s"]
    assert charges_of(site.subscriber, period_start=date(2023, 5, 1)) == {
        "Domestic calls": (Decimal("0.99") + Decimal("0.70"), 240),
        "Mobile": (Decimal("2.34"), 120)}
    assert Charge.objects.filter(subscriber=site.subscriber).count() == 3  # May (2) and June (1)


def test_a_call_moved_to_another_subscriber_by_a_rerating_moves_its_charge(site, may):
    # given May charged, then 102 found to have been Carol's until 19 May
    charges_recalculate(**MAY)
    number = site.colleague.numbers.get()
    number.valid_from = date(2023, 5, 20)
    number.save()
    carol = SubscriberFactory()
    PhoneNumberFactory(subscriber=carol, device=site.device, dn="102",
                       valid_from=date(2023, 1, 1), valid_to=date(2023, 5, 19))
    # when May is rated again
    calls_rerate(date_from=date(2023, 5, 1), date_to=date(2023, 5, 31))
    # then the call of 14 May, and its charge, are Carol's
    assert charges_of(site.colleague) == {}
    assert charges_of(carol) == {"Domestic calls": (Decimal("0.50"), 60)}


def test_balance_is_payments_minus_charges(site, may):
    # given May charged
    charges_recalculate(**MAY)
    # when the subscriber pays 370.00 by invoice
    payment = payment_create(subscriber=site.subscriber, amount=Decimal("370.00"),
                             day=date(2023, 5, 17), type=PaymentType.INVOICE, bank="PrivatBank")
    # then the payment is kept as paid, and each balance is payments less charges
    assert payment.type == PaymentType.INVOICE and payment.bank == "PrivatBank"
    # May's charges (4.20) and June's edge call (0.50), charged when it was collected
    assert balance(site.subscriber) == Decimal("370.00") - Decimal("4.20") - Decimal("0.50")
    assert balance(site.colleague) == Decimal("-0.50")


@pytest.mark.parametrize(("amount", "type_"), [("0", 0), ("-1", 0), ("1.005", 0), ("1", 4)])
def test_a_payment_must_be_positive_in_cents_and_of_a_known_type(amount, type_):
    # given a payment of no, a negative or a part-cent amount, or of an unknown type
    # when it is made; then it is refused
    with pytest.raises(ValueError):
        payment_create(subscriber=SubscriberFactory(), amount=Decimal(amount),
                       day=date(2023, 5, 1), type=type_)


def test_charges_recalculate_command_rebuilds_a_month(site, may):
    # given May's calls
    out = StringIO()
    # when the command charges May
    call_command("charges_recalculate", "--month", "2023-05", stdout=out)
    # then it says how many charges it made, and they are there
    assert out.getvalue().strip() == "3 call charges for 2023-05"
    assert charges_of(site.subscriber)["Mobile"] == (Decimal("2.00"), 120)
    # and a month it cannot read is a clear error
    with pytest.raises(CommandError, match="not yyyy-mm"):
        call_command("charges_recalculate", "--month", "May")


def test_calls_collected_are_charged_at_once(site):
    # given the subscriber on extension 101, whose carrier prices Kyiv at 0.50/min
    # when two 61 s calls to Kyiv are collected
    site.ingest(cdr_line(historyid="Call 1"), cdr_line(historyid="Call 2"))
    # then the month's charge exists without any recalculation: 2 x (0.50 x 120 / 60) = 2.00,
    # 2 x 120 billed seconds
    charge = Charge.objects.get(subscriber=site.number.subscriber)
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
