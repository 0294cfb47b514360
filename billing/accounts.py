"""Personal accounts: charges from rated calls, payments, balance (R7.1, R7.2).

A call counts in the month of its start in its device's time zone, as the subscriber
who held the number on that date (R6.3) sees it.
"""
import re
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.directory import validated_save
from billing.models import (
    Call,
    Charge,
    ChargeKind,
    Device,
    Payment,
    PaymentType,
    RecurringService,
    Subscriber,
)
from tariffs.rating import quantize_money

_ZERO = Decimal(0)
_UPDATED = ("amount", "count", "currency", "tariff_id")


def month_bounds(day: date) -> tuple[date, date]:
    """The first and the last day of the month of `day`."""
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _calls_in_period(period_start: date, period_end: date):
    """Rated calls that started within the period in their device's time zone."""
    condition = Q()
    for zone_name in Device.objects.values_list("timezone", flat=True).distinct():
        zone = zoneinfo.ZoneInfo(zone_name)
        condition |= Q(device__timezone=zone_name,
                       start__gte=datetime.combine(period_start, time.min, zone),
                       start__lt=datetime.combine(period_end + timedelta(days=1), time.min, zone))
    if not condition:
        return Call.objects.none()
    return Call.objects.filter(condition, cost__isnull=False, subscriber__isnull=False,
                               tariff__isnull=False)


# Key space of the PostgreSQL advisory locks of charge rebuilds (any constant of our own).
_CHARGES_LOCK_SPACE = 0x7453


def _month_lock(period_start: date) -> None:
    """Deliveries processed side by side (several Celery workers) rebuild the same month's
    charges, each by summing the month's calls and writing the sums. The second must wait
    until the first has committed and then sum, or it would write totals without the first
    one's calls, or fail on the unique charge the first one has just created. On
    PostgreSQL a transaction-scoped advisory lock per month does that; SQLite takes its
    write lock when the transaction begins (transaction_mode IMMEDIATE), which does too."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [_CHARGES_LOCK_SPACE, period_start.year * 12 + period_start.month])


def _charges_rebuild(*, subscriber_ids: set[int] | None, period_start: date,
                     period_end: date) -> int:
    # No savepoint of its own inside a re-rating batch's or a delivery's transaction: it
    # rolls back whole, and the month's lock is held until that transaction ends.
    with transaction.atomic(savepoint=False):
        _month_lock(period_start)
        return _charges_sum_and_write(subscriber_ids=subscriber_ids,
                                      period_start=period_start, period_end=period_end)


def _charges_sum_and_write(*, subscriber_ids: set[int] | None, period_start: date,
                           period_end: date) -> int:
    calls = _calls_in_period(period_start, period_end)
    if subscriber_ids is not None:
        calls = calls.filter(subscriber_id__in=subscriber_ids)
    rows = calls.values("subscriber_id", "tariff_id", "tariff__account_description",
                        "tariff__name", "currency").annotate(
        amount=Sum("cost"), seconds=Sum("billable_seconds")).order_by(
        "subscriber_id", "tariff_id", "currency")
    # (subscriber, service name, currency) -> [amount, seconds, tariff ids]
    sums: dict[tuple[int, str, str], list] = defaultdict(lambda: [_ZERO, 0, set()])
    for row in rows:
        service = (row["tariff__account_description"] or row["tariff__name"])[:190]
        entry = sums[(row["subscriber_id"], service, row["currency"])]
        entry[0] += row["amount"] or _ZERO
        entry[1] += row["seconds"] or 0
        entry[2].add(row["tariff_id"])
    wanted: dict[tuple[int, str], dict] = {}
    currencies_of: dict[tuple[int, str], int] = defaultdict(int)
    for subscriber_id, name, _currency in sums:
        currencies_of[(subscriber_id, name)] += 1
    for (subscriber_id, name, currency), (amount, seconds, tariff_ids) in sums.items():
        # One name in two currencies (tariffs of two carriers sharing a description):
        # two charges, told apart by their currency.
        service = name if currencies_of[(subscriber_id, name)] == 1 else f"{name} ({currency})"
        wanted[(subscriber_id, service)] = {
            "amount": quantize_money(amount, currency), "count": seconds, "currency": currency,
            "tariff_id": next(iter(tariff_ids)) if len(tariff_ids) == 1 else None}
    existing = Charge.objects.filter(kind=ChargeKind.CALL, period_start=period_start,
                                     period_end=period_end)
    if subscriber_ids is not None:
        existing = existing.filter(subscriber_id__in=subscriber_ids)
    stale, changed, now = [], [], timezone.now()
    for charge in existing.select_for_update():
        values = wanted.pop((charge.subscriber_id, charge.service_name), None)
        if values is None:
            stale.append(charge.pk)
            continue
        if any(getattr(charge, key) != value for key, value in values.items()):
            # An update keeps the charge's id and creation date (the API's `recdate`).
            for key, value in values.items():
                setattr(charge, key, value)
            charge.updated_at = now
            changed.append(charge)
    if changed:
        Charge.objects.bulk_update(changed, [*_UPDATED, "updated_at"], batch_size=500)
    if stale:
        Charge.objects.filter(pk__in=stale).delete()
    if wanted:
        Charge.objects.bulk_create([
            Charge(subscriber_id=subscriber_id, service_name=service,
                   period_start=period_start, period_end=period_end, kind=ChargeKind.CALL,
                   **values)
            for (subscriber_id, service), values in wanted.items()])
    return len(sums)


def charges_recalculate(*, subscriber: Subscriber | None = None, period_start: date,
                        period_end: date) -> int:
    """R7.1: rebuild the call charges of a period (a month) from the rated calls, for one
    subscriber or all: one charge per tariff, tariffs that share a description for personal
    accounts summed into one. Idempotent: running it again, or after a re-rating, corrects
    the charges and never doubles them. Returns the number of call charges of the period."""
    if period_start > period_end:
        raise ValueError(f"period_start {period_start} is after period_end {period_end}")
    return _charges_rebuild(subscriber_ids=None if subscriber is None else {subscriber.pk},
                            period_start=period_start, period_end=period_end)


def charges_recalculate_for(*, pairs: Iterable[tuple[int, date]]) -> None:
    """R7.1, R4.5: rebuild the call charges of these (subscriber id, day) pairs, each for
    the month of its day; one rebuild per month."""
    by_month: dict[date, set[int]] = defaultdict(set)
    for subscriber_id, day in pairs:
        if subscriber_id is not None:
            by_month[month_bounds(day)[0]].add(subscriber_id)
    for first, subscriber_ids in sorted(by_month.items()):
        _charges_rebuild(subscriber_ids=subscriber_ids, period_start=first,
                         period_end=month_bounds(first)[1])


def payment_create(*, subscriber: Subscriber, amount: Decimal, day: date,
                   type: int = PaymentType.UNSPECIFIED, bank: str = "") -> Payment:
    """R7.2: a payment into a subscriber's personal account."""
    amount = Decimal(amount)
    if not amount.is_finite() or amount <= 0:
        raise ValueError("the amount of a payment must be a positive number")
    if amount.adjusted() >= 12:  # the column's 12 digits before the point
        raise ValueError("the amount of a payment has at most 12 digits before the point")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("the amount of a payment has at most two decimal places")
    if type not in PaymentType.values:
        raise ValueError(f"unknown payment type {type!r}")
    return Payment.objects.create(subscriber=subscriber, amount=amount, date=day,
                                  type=PaymentType(type), bank=bank[:200])


def balance(subscriber: Subscriber) -> Decimal:
    """R7.2: payments minus charges of a personal account, all periods."""
    paid = Payment.objects.filter(subscriber=subscriber).aggregate(s=Sum("amount"))["s"]
    charged = Charge.objects.filter(subscriber=subscriber).aggregate(s=Sum("amount"))["s"]
    return (paid or _ZERO) - (charged or _ZERO)


def recurring_charges_create(*, month: date) -> int:
    """R7.1: the month's recurring charges (subscription fees): one charge per subscriber
    per service in force on the month's first day, pro rata (by days) in the month the
    subscriber was connected. Idempotent: running it again updates, never doubles.
    Returns the number of charges written."""
    first, last = month_bounds(month)
    days = (last - first).days + 1
    services = RecurringService.objects.filter(valid_from__lte=last).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=first))
    written = 0
    with transaction.atomic():
        for service in services:
            subscribers = (Subscriber.objects.filter(pk=service.subscriber_id)
                           if service.subscriber_id else
                           Subscriber.objects.filter(plan_id=service.plan_id))
            for subscriber in subscribers.filter(
                    Q(connection_date__isnull=True) | Q(connection_date__lte=last)):
                start = max(first, subscriber.connection_date or first, service.valid_from)
                end = min(last, service.valid_to or last)
                charged_days = (end - start).days + 1
                if charged_days <= 0:
                    continue
                amount = quantize_money(service.amount * charged_days / days, service.currency)
                Charge.objects.update_or_create(
                    subscriber=subscriber, period_start=first, period_end=last,
                    service_name=service.name[:200],
                    defaults={"amount": amount, "count": charged_days,
                              "currency": service.currency, "kind": ChargeKind.RECURRING,
                              "tariff": None})
                written += 1
    return written


def payment_delete(*, payment: Payment) -> None:
    """R7.2: remove a payment entered by mistake (the balance loses it)."""
    with transaction.atomic():
        payment.delete()


RECURRING_FIELDS = ("name", "amount", "currency", "valid_from", "valid_to")


def _recurring_errors(service: RecurringService) -> dict:
    errors = {}
    if not re.fullmatch(r"[A-Z]{3}", service.currency or ""):
        errors["currency"] = [_("An ISO 4217 code: three capital letters, as UAH.")]
    if service.amount is not None and service.amount < 0:
        errors["amount"] = [_("A monthly fee is not negative.")]
    if (service.valid_to is not None and service.valid_from is not None
            and service.valid_to < service.valid_from):
        errors["valid_to"] = [_("The last day comes before the first.")]
    return errors


def recurring_service_create(*, name: str, amount: Decimal, valid_from: date,
                             currency: str = "UAH", valid_to: date | None = None,
                             subscriber: Subscriber | None = None, plan=None) -> RecurringService:
    """R7.1: a monthly fee of one subscriber or of every subscriber of a tariff plan;
    charged from the month of valid_from (recurring_charges_create)."""
    service = RecurringService(name=(name or "").strip(), amount=amount,
                               currency=(currency or "").strip().upper(),
                               valid_from=valid_from, valid_to=valid_to, subscriber=subscriber,
                               plan=plan)
    with transaction.atomic():
        return validated_save(service, _recurring_errors(service))


def recurring_service_update(*, service: RecurringService, **values) -> RecurringService:
    """R7.1: change a monthly fee's name, amount, currency or period; charges made already
    change when the month's recurring charges are made again."""
    unknown = set(values) - set(RECURRING_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    if "currency" in values:
        values["currency"] = (values["currency"] or "").strip().upper()
    for name, value in values.items():
        setattr(service, name, value)
    with transaction.atomic():
        return validated_save(service, _recurring_errors(service))


def recurring_service_end(*, service: RecurringService, valid_to: date) -> RecurringService:
    """R7.1: end a monthly fee on its last day (months after it are not charged)."""
    return recurring_service_update(service=service, valid_to=valid_to)
