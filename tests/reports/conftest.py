"""The calls the reports' tests count, small enough to sum by hand.

January 2024 (Kyiv is UTC+2, London UTC+0). Groups: Sales > Inside > Key accounts, and
Support beside Sales. Ukrtelecom prices in UAH, Intercall in USD.

call device who (group)          UTC start    local start  dur  type           tariff   cost
c1   Kyiv   Ivan (Sales)         01-10 08:00  01-10 10:00  120  local          Kyiv     1.0000 UAH
c2   Kyiv   Ivan (Sales)         01-10 08:01  01-10 10:01   60  mobile         Mobile   1.5000 UAH
c3   Kyiv   Olena (Sales)        01-10 08:30  01-10 10:30  300  international  Poland   0.7500 USD
c4   Kyiv   Petro (Inside)       01-10 22:30  01-11 00:30   90  long-distance  Ukraine  2.0000 UAH
c5   Kyiv   Maria (Key accounts) 01-11 09:00  01-11 11:00  600  international  Poland   1.2500 USD
c6   Kyiv   unknown 555          01-11 09:10  01-11 11:10   30  local          Kyiv     0.5000 UAH
c7   Kyiv   Ivan, incoming       01-11 10:00  01-11 12:00  200  incoming       -        unrated
c8   Kyiv   Olena, unanswered    01-11 10:05  01-11 12:05    0  mobile         Mobile   0.0000 UAH
c9   Kyiv   Ivan, short          01-12 07:00  01-12 09:00    5  local          Kyiv     0.2500 UAH
c10  London Taras (Support)      01-10 23:30  01-10 23:30   45  international  Poland   0.1000 USD
c11  Kyiv   Ivan, next month     02-01 08:00  02-01 10:00   60  local          Kyiv     9.0000 UAH
"""
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Call
from tariffs.choices import CallType, Direction
from tests.factories import (
    DeviceFactory,
    NodeFactory,
    OperatorFactory,
    PhoneNumberFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffFactory,
)

JANUARY = {"day_from": date(2024, 1, 1), "day_to": date(2024, 1, 31)}


@dataclass
class Calls:
    site: object
    london: object
    inside: object
    key_accounts: object
    support: object
    petro: object
    maria: object
    taras: object
    calls: dict


def _call(n, device, start, duration, call_type, *, subscriber=None, tariff=None, operator=None,
          cost=None, currency="", direction=Direction.OUTGOING, extension="101",
          dialled="", normalized=""):
    return Call(device=device, source_key=f"c{n}", start=start, duration=duration,
                answered=duration > 0, direction=direction, call_type=call_type,
                extension=extension, subscriber=subscriber, tariff=tariff, operator=operator,
                dialled=dialled, normalized=normalized, trunk="10001" if operator else "",
                billable_seconds=duration, cost=None if cost is None else Decimal(cost),
                currency=currency)


@pytest.fixture
def calls(site) -> Calls:
    london = DeviceFactory(node=NodeFactory(name="London", country="GB"), name="LondonPBX",
                           timezone="Europe/London")
    inside = SubscriberGroupFactory(node=site.node, name="Inside", parent=site.sales)
    key_accounts = SubscriberGroupFactory(node=site.node, name="Key accounts", parent=inside)
    support = SubscriberGroupFactory(node=site.node, name="Support")
    petro = SubscriberFactory(full_name="Petro Bondar", group=inside)
    maria = SubscriberFactory(full_name="Maria Shevchenko", group=key_accounts)
    taras = SubscriberFactory(full_name="Taras Melnyk", group=support)
    PhoneNumberFactory(subscriber=petro, device=site.device, dn="103")
    PhoneNumberFactory(subscriber=maria, device=site.device, dn="104")
    PhoneNumberFactory(subscriber=taras, device=london, dn="201")
    uah = site.operator
    usd = OperatorFactory(name="Intercall", currency="USD")
    kyiv, ukraine = site.kyiv.tariff, site.ukraine.tariff
    mobile = TariffFactory(operator=uah, name="Mobile")
    poland = TariffFactory(operator=usd, name="Poland")
    kyiv_dev, ivan, olena = site.device, site.subscriber, site.colleague
    T = CallType

    def at(month, day, hour, minute=0):
        return datetime(2024, month, day, hour, minute, tzinfo=UTC)

    made = [
        _call(1, kyiv_dev, at(1, 10, 8), 120, T.LOCAL, subscriber=ivan, tariff=kyiv, operator=uah,
              cost="1.0000", currency="UAH", normalized="380441234567"),
        _call(2, kyiv_dev, at(1, 10, 8, 1), 60, T.MOBILE, subscriber=ivan, tariff=mobile,
              operator=uah, cost="1.5000", currency="UAH", normalized="380671234567"),
        _call(3, kyiv_dev, at(1, 10, 8, 30), 300, T.INTERNATIONAL, subscriber=olena, tariff=poland,
              operator=usd, cost="0.7500", currency="USD", extension="102",
              normalized="48221234567"),
        _call(4, kyiv_dev, at(1, 10, 22, 30), 90, T.LONG_DISTANCE, subscriber=petro,
              tariff=ukraine, operator=uah, cost="2.0000", currency="UAH", extension="103",
              normalized="380321234567"),
        _call(5, kyiv_dev, at(1, 11, 9), 600, T.INTERNATIONAL, subscriber=maria, tariff=poland,
              operator=usd, cost="1.2500", currency="USD", extension="104",
              normalized="48221234567"),
        _call(6, kyiv_dev, at(1, 11, 9, 10), 30, T.LOCAL, tariff=kyiv, operator=uah,
              cost="0.5000", currency="UAH", extension="555", normalized="380441234567"),
        _call(7, kyiv_dev, at(1, 11, 10), 200, T.INCOMING, subscriber=ivan,
              direction=Direction.INCOMING, dialled="0501112233"),
        _call(8, kyiv_dev, at(1, 11, 10, 5), 0, T.MOBILE, subscriber=olena, tariff=mobile,
              operator=uah, cost="0.0000", currency="UAH", extension="102",
              normalized="380671234567"),
        _call(9, kyiv_dev, at(1, 12, 7), 5, T.LOCAL, subscriber=ivan, tariff=kyiv, operator=uah,
              cost="0.2500", currency="UAH", normalized="380441234567"),
        _call(10, london, at(1, 10, 23, 30), 45, T.INTERNATIONAL, subscriber=taras,
              tariff=poland, operator=usd, cost="0.1000", currency="USD", extension="201",
              normalized="48221234567"),
        _call(11, kyiv_dev, at(2, 1, 8), 60, T.LOCAL, subscriber=ivan, tariff=kyiv,
              operator=uah, cost="9.0000", currency="UAH", normalized="380441234567"),
    ]
    Call.objects.bulk_create(made)
    return Calls(site, london, inside, key_accounts, support, petro, maria, taras,
                 {c.source_key: c for c in Call.objects.all()})
