"""factory-boy factories for the data model (STYLE rule 9)."""
import datetime
from decimal import Decimal

import factory

from billing.models import Device, Node, PhoneNumber, Route, Subscriber, SubscriberGroup
from observers.models import ObserverProfile
from observers.parsers.base import CallRecord
from tariffs.choices import Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.services import operator_rates_changed

EPOCH = datetime.date(2020, 1, 1)


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Carrier{n}")
    currency = "UAH"


class TariffPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffPlan
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Plan{n}")


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Node{n}")
    country = "UA"


class DeviceFactory(factory.django.DjangoModelFactory):
    """A 3CX in Kyiv: access code 9, extensions of three digits."""

    class Meta:
        model = Device

    node = factory.SubFactory(NodeFactory)
    name = factory.Sequence(lambda n: f"PBX{n}")
    type = "3cx"
    timezone = "Europe/Kyiv"
    access_code = "9"
    national_prefix = "0"
    international_prefix = "00"
    country_code = "380"
    area_code = "44"
    extension_length = 3
    default_operator = factory.SubFactory(OperatorFactory)
    default_plan = factory.SubFactory(TariffPlanFactory)


class RouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Route

    device = factory.SubFactory(DeviceFactory)
    name = factory.Sequence(lambda n: f"{10000 + n}")
    operator = factory.SubFactory(OperatorFactory)


class SubscriberGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubscriberGroup

    node = factory.SubFactory(NodeFactory)
    name = factory.Sequence(lambda n: f"Group{n}")


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    full_name = factory.Sequence(lambda n: f"Subscriber {n}")
    group = factory.SubFactory(SubscriberGroupFactory)


class PhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    subscriber = factory.SubFactory(SubscriberFactory)
    device = factory.SubFactory(DeviceFactory)
    dn = factory.Sequence(lambda n: f"{100 + n % 900}")
    valid_from = EPOCH


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff

    operator = factory.SubFactory(OperatorFactory)
    name = factory.Sequence(lambda n: f"Tariff{n}")
    valid_from = EPOCH


def priced_code(*, operator, plan, code, price, name="", call_type=None, tariff_name=None,
                valid_from=EPOCH, valid_to=None, first=60, step=60, fee="0", direction=0):
    """A tariff with one code and its price in `plan`; returns the code."""
    tariff, _ = Tariff.objects.get_or_create(
        operator=operator, name=tariff_name or name or code, direction=direction,
        valid_from=valid_from,
        defaults={"call_type": call_type, "first_interval": first, "next_interval": step,
                  "valid_to": valid_to},
    )
    TariffPrice.objects.update_or_create(
        tariff=tariff, plan=plan,
        defaults={"price_per_minute": Decimal(price), "connection_fee": Decimal(fee)})
    phone_code = PhoneCode.objects.create(operator=operator, code=code, name=name, tariff=tariff,
                                          call_type=call_type, valid_from=valid_from,
                                          valid_to=valid_to)
    operator_rates_changed(operator_ids=[operator.pk])
    return phone_code


class ObserverProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ObserverProfile

    name = factory.Sequence(lambda n: f"Profile{n}")
    device = factory.SubFactory(DeviceFactory)
    source = "folder"
    settings = factory.LazyFunction(dict)


def call_record(key, start, dialled, duration, *, extension="101", direction=Direction.OUTGOING,
                **fields) -> CallRecord:
    """A call as a parser hands it on (observers.parsers.base.CallRecord): `extension`
    dialling `dialled` at `start` (the device's local time) for `duration` seconds."""
    return CallRecord(source_key=key, start=start, duration=duration, direction=direction,
                      extension=extension, dialled=dialled, **fields)
