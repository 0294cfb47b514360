"""R8.1: the month's usage of each subscriber (billing.MonthUsage), the running totals that
limits are checked against. Storing calls adds the new calls to them in the same
transaction (an upsert per subscriber, month, call type and currency); re-rating, which
changes costs and may move calls between subscribers, rebuilds the months it touched.

Usage counts a subscriber's outgoing calls (incoming and internal calls cost nothing and
use no budget): their number, their talk time and, per currency, their cost (an unrated
call adds its time but no cost)."""
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Sum

from billing.models import Call, Device, MonthUsage
from tariffs.choices import Direction

_ZERO = Decimal("0")


def _month(day: date) -> date:
    return day.replace(day=1)


def usage_add(*, calls: Iterable[Call], zone: zoneinfo.ZoneInfo) -> set[int]:
    """Add newly stored calls (of one device, whose zone is `zone`) to the totals; returns
    the subscribers whose usage grew."""
    sums: dict[tuple, list] = defaultdict(lambda: [0, 0, _ZERO])
    for call in calls:
        if call.subscriber_id is None or call.direction != Direction.OUTGOING:
            continue
        key = (call.subscriber_id, _month(call.start.astimezone(zone).date()), call.call_type,
               call.currency or "")
        entry = sums[key]
        entry[0] += 1
        entry[1] += call.duration or 0
        entry[2] += call.cost or _ZERO
    if not sums:
        return set()
    meta = MonthUsage._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ["subscriber_id", "month", "call_type", "currency", "calls", "seconds", "cost"]
    columns = ", ".join(quote(name) for name in names)
    rows = []
    # In key order, so that two deliveries updating the same rows lock them in one order.
    for (subscriber_id, month, call_type, currency), (count, seconds, cost) in sorted(
            sums.items()):
        rows += [subscriber_id, connection.ops.adapt_datefield_value(month), call_type, currency,
                 count, seconds, connection.ops.adapt_decimalfield_value(cost, 16, 4)]
    marks = ", ".join(["(" + ", ".join(["%s"] * len(names)) + ")"] * len(sums))
    grow = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}"
                     for name in ("calls", "seconds", "cost"))
    with connection.cursor() as cursor:
        # Table and column names come from the model: no injection.
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {marks} "  # noqa: S608
            f"ON CONFLICT (subscriber_id, month, call_type, currency) DO UPDATE SET {grow}", rows)
    return {key[0] for key in sums}


def usage_rebuild(*, pairs: Iterable[tuple[int | None, date]]) -> None:
    """Sum again from the calls the usage of these (subscriber id, local day) pairs, each for
    the month of its day (after re-rating)."""
    by_month: dict[date, set[int]] = defaultdict(set)
    for subscriber_id, day in pairs:
        if subscriber_id is not None:
            by_month[_month(day)].add(subscriber_id)
    for month, subscriber_ids in sorted(by_month.items()):
        following = (month + timedelta(days=32)).replace(day=1)
        MonthUsage.objects.filter(subscriber_id__in=subscriber_ids, month=month).delete()
        totals = []
        for zone_name in Device.objects.values_list("timezone", flat=True).distinct():
            zone = zoneinfo.ZoneInfo(zone_name)
            rows = (Call.objects.filter(
                subscriber_id__in=subscriber_ids, direction=Direction.OUTGOING,
                device__timezone=zone_name, start__gte=datetime.combine(month, time.min, zone),
                start__lt=datetime.combine(following, time.min, zone))
                .values("subscriber_id", "call_type", "currency")
                .annotate(n=Count("id"), seconds=Sum("duration"), cost=Sum("cost")))
            totals += list(rows)
        merged: dict[tuple, list] = defaultdict(lambda: [0, 0, _ZERO])
        for row in totals:
            entry = merged[(row["subscriber_id"], row["call_type"], row["currency"] or "")]
            entry[0] += row["n"]
            entry[1] += row["seconds"] or 0
            entry[2] += row["cost"] or _ZERO
        MonthUsage.objects.bulk_create([
            MonthUsage(subscriber_id=subscriber_id, month=month, call_type=call_type,
                       currency=currency, calls=count, seconds=seconds, cost=cost)
            for (subscriber_id, call_type, currency), (count, seconds, cost) in merged.items()])
