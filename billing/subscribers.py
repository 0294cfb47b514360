"""Writes of subscribers and their numbers (R6.1, R6.2), as the REST API, the site
configuration and the operator's pages make them."""
import re
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from billing.directory import validated_save
from billing.models import Device, PhoneNumber, Subscriber, SubscriberGroup, SubscriberType
from billing.selectors import number_overlapping
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


# -- the operator's pages (R11.1): refusals are ValidationErrors keyed by field, as forms
# show them, with messages that name who holds what.

SUBSCRIBER_FIELDS = ("full_name", "group", "type", "connection_date", "contract_number",
                     "contract_date", "account_number", "personal_code", "edrpou", "tax_code",
                     "bank_code", "bank_name", "bank_account", "email", "plan")


def subscriber_update(*, subscriber: Subscriber, **values) -> Subscriber:
    """R6.1: change a subscriber's fields (any of SUBSCRIBER_FIELDS); an account number
    left empty becomes the id again, one in use by another subscriber is refused."""
    unknown = set(values) - set(SUBSCRIBER_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    if "full_name" in values:
        values["full_name"] = (values["full_name"] or "").strip()
    if "account_number" in values:
        values["account_number"] = (values["account_number"] or "").strip() or None
    with transaction.atomic():
        for name, value in values.items():
            setattr(subscriber, name, value)
        errors = {}
        if not subscriber.full_name:
            errors["full_name"] = [_("A subscriber needs a full name.")]
        if subscriber.account_number and Subscriber.objects.filter(
                account_number=subscriber.account_number).exclude(pk=subscriber.pk).exists():
            errors["account_number"] = [_("Account number %(account)s belongs to another "
                                          "subscriber.") % {"account": subscriber.account_number}]
        return validated_save(subscriber, errors)


def subscriber_delete(*, subscriber: Subscriber) -> None:
    """R6.1: remove a subscriber with its numbers, charges, payments and limits; its calls
    are kept, as calls from a number nobody holds (R6.3)."""
    with transaction.atomic():
        subscriber.delete()


def _overlap_error(dn: str, other: PhoneNumber) -> str:
    if other.valid_to is None:
        return _("%(dn)s is held by %(holder)s from %(start)s on; the periods of one number "
                 "cannot overlap.") % {"dn": dn, "holder": other.subscriber,
                                       "start": other.valid_from}
    return _("%(dn)s is held by %(holder)s from %(start)s to %(end)s; the periods of one "
             "number cannot overlap.") % {"dn": dn, "holder": other.subscriber,
                                          "start": other.valid_from, "end": other.valid_to}


def number_assign(*, subscriber: Subscriber, device: Device, dn: str, valid_from: date,
                  valid_to: date | None = None, description: str = "") -> PhoneNumber:
    """R6.2: give `subscriber` the number `dn` of `device` for [valid_from, valid_to].
    Refused when someone holds it within that period; open-ended (valid_to empty), it is
    number_add: a holding that begins later ends this one the day before."""
    dn = (dn or "").strip()
    if not _DN.match(dn):
        raise ValidationError({"dn": [_("A number is digits, *, # or +, at most 32 of them.")]})
    if valid_to is not None and valid_to < valid_from:
        raise ValidationError({"valid_to": [_("The last day comes before the first.")]})
    with transaction.atomic():
        holdings = PhoneNumber.objects.select_for_update().filter(device=device, dn=dn)
        list(holdings.values_list("pk", flat=True))  # locked before they are read
        # Open-ended, only the first day must be free: number_add ends it before a later one.
        other = number_overlapping(device=device, dn=dn, valid_from=valid_from,
                                   valid_to=valid_to if valid_to is not None else valid_from)
        if other is not None:
            raise ValidationError({"dn": [_overlap_error(dn, other)]})
        if valid_to is None:
            try:
                return number_add(subscriber=subscriber, device=device, dn=dn,
                                  valid_from=valid_from, description=description)
            except Conflict as exc:
                raise ValidationError({"dn": [str(exc)]}) from None
        return validated_save(PhoneNumber(subscriber=subscriber, device=device, dn=dn,
                                          valid_from=valid_from, valid_to=valid_to,
                                          description=description[:200]))


def number_update(*, number: PhoneNumber, **values) -> PhoneNumber:
    """R6.2: change a number's description or its last day: a date ends the holding (the
    number is free for someone else from the next day), empty holds it on; a period that
    would reach into another holder's is refused."""
    unknown = set(values) - {"description", "valid_to"}
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    with transaction.atomic():
        for name, value in values.items():
            setattr(number, name, value)
        if number.valid_to is not None and number.valid_to < number.valid_from:
            raise ValidationError({"valid_to": [_(
                "The last day %(end)s comes before the first, %(start)s.")
                % {"end": number.valid_to, "start": number.valid_from}]})
        list(PhoneNumber.objects.select_for_update().filter(
            device_id=number.device_id, dn=number.dn).values_list("pk", flat=True))
        other = number_overlapping(device=number.device, dn=number.dn,
                                   valid_from=number.valid_from, valid_to=number.valid_to,
                                   exclude=number.pk)
        if other is not None:
            raise ValidationError({"valid_to": [_overlap_error(number.dn, other)]})
        # The model's own check says the same in other words: not twice.
        number.save()
        return number


def number_delete(*, number: PhoneNumber) -> None:
    """R6.2: remove a number given by mistake; calls stored already keep their subscriber."""
    with transaction.atomic():
        number.delete()
