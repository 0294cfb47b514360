"""Writes of subscribers and their numbers (R6.1, R6.2), as the REST API makes them."""
import re
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from billing.models import Device, PhoneNumber, Subscriber, SubscriberGroup, SubscriberType
from tariffs.models import TariffPlan

_DN = re.compile(r"^[0-9*#+]{1,32}$")


class Conflict(Exception):
    """The write contradicts what is stored (a number held on that date, an account
    number in use): the API answers 409."""


def subscriber_create(*, full_name: str, group: SubscriberGroup | None = None,
                      type: int = SubscriberType.INDIVIDUAL, connection_date: date | None = None,
                      contract_number: str = "", contract_date: date | None = None,
                      account_number: str = "", personal_code: str = "", edrpou: str = "",
                      tax_code: str = "", bank_code: str = "", bank_name: str = "",
                      bank_account: str = "", plan: TariffPlan | None = None) -> Subscriber:
    """R6.1: a subscriber; the personal account number is its id when not given."""
    if not full_name.strip():
        raise ValueError("a subscriber needs a full name")
    if type not in SubscriberType.values:
        raise ValueError(f"unknown subscriber type {type!r}")
    account_number = account_number.strip() or None
    if account_number and Subscriber.objects.filter(account_number=account_number).exists():
        raise Conflict(f"account number {account_number!r} belongs to another subscriber")
    try:
        with transaction.atomic():
            return Subscriber.objects.create(
                full_name=full_name.strip(), group=group, type=SubscriberType(type),
                connection_date=connection_date, contract_number=contract_number,
                contract_date=contract_date, account_number=account_number,
                personal_code=personal_code, edrpou=edrpou, tax_code=tax_code,
                bank_code=bank_code, bank_name=bank_name, bank_account=bank_account, plan=plan)
    except IntegrityError:  # the same account number created concurrently
        if account_number is None:
            raise Conflict("the account number made from the new subscriber's id was taken "
                           "at the same moment; try again") from None
        raise Conflict(f"account number {account_number!r} belongs to another subscriber") from None


def number_add(*, subscriber: Subscriber, device: Device, dn: str, valid_from: date,
               description: str = "") -> PhoneNumber:
    """R6.2: give `subscriber` the number `dn` of `device` from `valid_from`. Refused
    (Conflict) when someone holds it on that date; when it is given to someone later, this
    holding ends the day before."""
    dn = dn.strip()
    if not _DN.match(dn):
        raise ValueError(f"{dn!r} is not a phone number (digits, *, # or +, at most 32)")
    with transaction.atomic():
        holdings = PhoneNumber.objects.select_for_update().filter(device=device, dn=dn)
        held = holdings.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from),
                               valid_from__lte=valid_from).select_related("subscriber").first()
        if held is not None:
            raise Conflict(f"number {dn} of {device} is held by subscriber {held.subscriber_id} "
                           f"on {valid_from}")
        later = holdings.filter(valid_from__gt=valid_from).order_by("valid_from").first()
        try:
            with transaction.atomic():
                return PhoneNumber.objects.create(
                    subscriber=subscriber, device=device, dn=dn, description=description[:200],
                    valid_from=valid_from,
                    valid_to=later.valid_from - timedelta(days=1) if later else None)
        except IntegrityError:  # given to someone else at the same moment (migration 0005)
            raise Conflict(f"number {dn} of {device} was given to another subscriber for "
                           f"{valid_from} at the same moment") from None
