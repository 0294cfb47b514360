"""Reads of billing data that are more than one filter()."""
import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

import holidays
from django.db.models import CASCADE, PROTECT, RESTRICT, Count, Q

from billing.models import Call, Charge, Device, Holiday, Payment, PhoneNumber, Subscriber, SubscriberGroup


class HolidayCalendar:
    """R4.2: a node's holidays: its country's public holidays (the `holidays` package)
    plus the node's own days. Years are loaded as they are asked for."""

    def __init__(self, node):
        self.node = node
        self._custom = set(Holiday.objects.filter(node=node).values_list("date", flat=True))
        self._years: dict[int, frozenset[date]] = {}

    def is_holiday(self, day: date) -> bool:
        if day in self._custom:
            return True
        if not self.node.country:
            return False
        year = self._years.get(day.year)
        if year is None:
            year = self._years[day.year] = public_holidays(self.node.country, day.year)
        return day in year


@lru_cache(maxsize=256)
def public_holidays(country: str, year: int) -> frozenset[date]:
    """A country's public holidays of a year, from the `holidays` package (worked out once
    per process: some 3 ms, which every batch of calls would otherwise pay)."""
    try:
        return frozenset(holidays.country_holidays(country, years=year))
    except NotImplementedError:  # a country the package does not know
        return frozenset()


class NumberDirectory:
    """R6.3: who held each number of a device on a given day."""

    def __init__(self, device: Device):
        self._by_dn: dict[str, list[tuple[date, date | None, int, int | None]]] = defaultdict(list)
        rows = PhoneNumber.objects.filter(device=device).values_list(
            "dn", "valid_from", "valid_to", "subscriber_id", "subscriber__plan_id"
        )
        for dn, valid_from, valid_to, subscriber_id, plan_id in rows.order_by("-valid_from"):
            # Newest first: where periods overlap, the latest assignment holds the number.
            self._by_dn[dn].append((valid_from, valid_to, subscriber_id, plan_id))

    @property
    def dns(self):
        """Every number ever held on the device (a view, not a copy)."""
        return self._by_dn.keys()

    def holder(self, dn: str, day: date) -> tuple[int, int | None] | None:
        """(subscriber id, plan id) of the holder of `dn` on `day`, or None."""
        for valid_from, valid_to, subscriber_id, plan_id in self._by_dn.get(dn, ()):
            if valid_from <= day and (valid_to is None or day <= valid_to):
                return subscriber_id, plan_id
        return None


def group_subtree_ids(group) -> set[int]:
    """R1.3: a group's id and the ids of every group below it."""
    root = group.pk if hasattr(group, "pk") else int(group)
    parents = dict(SubscriberGroup.objects.values_list("id", "parent_id"))
    found = {root}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def _local_days(day_from: date | None, day_to: date | None) -> Q:
    """Calls whose start falls on [day_from, day_to] as their own device's calendar shows it
    (R3.2: times are shown in the device's zone, so whole days are cut there too)."""
    condition = Q(pk__in=[])
    for device_id, zone_name in Device.objects.values_list("id", "timezone"):
        zone = zoneinfo.ZoneInfo(zone_name)
        part = Q(device_id=device_id)
        if day_from:
            part &= Q(start__gte=datetime.combine(day_from, time.min, zone))
        if day_to:
            part &= Q(start__lt=datetime.combine(day_to + timedelta(days=1), time.min, zone))
        condition |= part
    return condition


def call_list(*, filters: dict | None = None):
    """R11.2: calls with what the calls page and the export show, newest first."""
    filters = filters or {}
    qs = Call.objects.select_related(
        "device", "subscriber", "subscriber__group", "operator", "tariff", "route"
    )
    if filters.get("date_from"):
        qs = qs.filter(start__gte=filters["date_from"])
    if filters.get("date_to"):
        qs = qs.filter(start__lt=filters["date_to"])
    if filters.get("day_from") or filters.get("day_to"):
        qs = qs.filter(_local_days(filters.get("day_from"), filters.get("day_to")))
    if filters.get("number"):
        n = filters["number"]
        qs = qs.filter(Q(extension__contains=n) | Q(dialled__contains=n) | Q(normalized__contains=n))
    for key in ("device", "subscriber", "call_type", "direction"):
        if filters.get(key) not in (None, ""):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("group"):
        qs = qs.filter(subscriber__group__in=group_subtree_ids(filters["group"]))
    if filters.get("cost_min") is not None:
        qs = qs.filter(cost__gte=filters["cost_min"])
    if filters.get("cost_max") is not None:
        qs = qs.filter(cost__lte=filters["cost_max"])
    if filters.get("unknown"):
        qs = qs.filter(subscriber__isnull=True).exclude(direction=1)
    return qs.order_by("-start", "-id")


def subscriber_list(*, filters: dict | None = None):
    """R10 (read methods): subscribers by group and by a fragment of name or account number."""
    filters = filters or {}
    qs = Subscriber.objects.select_related("group", "plan")
    if filters.get("group") is not None:
        qs = qs.filter(group=filters["group"])
    if filters.get("q"):
        qs = qs.filter(Q(full_name__icontains=filters["q"]) | Q(account_number__icontains=filters["q"]))
    return qs.order_by("full_name", "id")


def number_list(*, filters: dict | None = None):
    """R6.2, R10: numbers by subscriber and device, held on `day` when given."""
    filters = filters or {}
    qs = PhoneNumber.objects.select_related("device")
    for key in ("subscriber", "device"):
        if filters.get(key) is not None:
            qs = qs.filter(**{key: filters[key]})
    if filters.get("day"):
        day = filters["day"]
        qs = qs.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day), valid_from__lte=day)
    return qs.order_by("subscriber_id", "device__name", "dn", "valid_from")


def account_movements(subscriber, currency: str | None = None) -> list[dict]:
    """R7.2: a personal account's charges and payments, oldest first, with the running
    balance (payments minus charges) after each in that movement's currency: money in two
    currencies is never added up. Payments are in the account's currency
    (account_currency), unless `currency` names it."""
    if currency is None:
        currency = account_currency(subscriber)
    rows = [{"date": c.period_start, "kind": "charge", "text": c.service_name,
             "amount": -c.amount, "currency": c.currency}
            for c in Charge.objects.filter(subscriber=subscriber)]
    rows += [{"date": p.date, "kind": "payment", "text": f"{p.get_type_display()} {p.bank}".strip(),
              "amount": p.amount, "currency": currency, "order": p.pk, "payment_id": p.pk}
             for p in Payment.objects.filter(subscriber=subscriber)]
    # Within a day, charges (a month's first day) come before that day's payments.
    rows.sort(key=lambda r: (r["date"], r["kind"] == "payment", r.get("order", 0)))
    running: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        running[row["currency"]] += row["amount"]
        row["balance"] = running[row["currency"]]
    return rows


# -- the operator's pages (R11.1)

# A payment's currency while an account has no charges: the operators' default (Operator).
DEFAULT_CURRENCY = "UAH"


def account_currency(subscriber) -> str:
    """R7.2: the currency a subscriber's payments count in. A payment records none (R7.2,
    and the API's `payment` takes none): it is the currency most of the account's charges
    are in (on a tie the operators' default, else the first by name), the default while
    there are none."""
    counted = list(Charge.objects.filter(subscriber=subscriber).exclude(currency="")
                   .order_by().values_list("currency").annotate(n=Count("id")))
    if not counted:
        return DEFAULT_CURRENCY
    return min(counted, key=lambda row: (-row[1], row[0] != DEFAULT_CURRENCY, row[0]))[0]


def account_balances(movements: list[dict], currency: str) -> list[dict]:
    """R7.2: the balance in each currency after `movements` (account_movements), the
    account's own `currency` first, then the others by name; never a sum of two."""
    last: dict[str, Decimal] = {currency: Decimal(0)}
    for row in movements:
        last[row["currency"]] = row["balance"]
    return [{"currency": code, "balance": last[code]}
            for code in sorted(last, key=lambda code: (code != currency, code))]


def number_overlapping(*, device, dn: str, valid_from: date, valid_to: date | None,
                       exclude: int | None = None):
    """R6.2: the first holding of `dn` on `device` (with its subscriber) that shares a day
    with [valid_from, valid_to] (valid_to empty: no end), or None."""
    others = PhoneNumber.objects.filter(device=device, dn=dn).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from))
    if valid_to is not None:
        others = others.filter(valid_from__lte=valid_to)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    return others.select_related("subscriber").order_by("valid_from").first()


def delete_impact(model, pks, *, skip: tuple[str, ...] = ()) -> list[dict]:
    """R11.1: what deleting the rows `pks` of `model` does to the rows that refer to them,
    one entry per kind of row: its name (the model's verbose name, plural), how many, and
    the effect: "deleted" with them, "kept" without the reference, or "refused" (the
    database protects them, so the delete cannot be made). Relations of the model to itself
    and those named in `skip` are left to the caller. One count per relation."""
    pks = list(pks)
    found = []
    for relation in model._meta.related_objects:
        if relation.many_to_many or relation.related_model is model or relation.name in skip:
            continue
        count = relation.related_model._base_manager.filter(
            **{f"{relation.field.name}__in": pks}).count()
        if not count:
            continue
        on_delete = relation.on_delete
        effect = ("refused" if on_delete in (PROTECT, RESTRICT)
                  else "deleted" if on_delete is CASCADE else "kept")
        meta = relation.related_model._meta
        found.append({"name": meta.verbose_name if count == 1 else meta.verbose_name_plural,
                      "relation": relation.name, "count": count, "effect": effect})
    return found


def group_forest(*, node=None) -> list[dict]:
    """R1.3: the groups of each node as their trees read, depth first: one row per group
    with its node, depth and its own subscribers' count; groups of a cycle made outside the
    pages (there are none through them) are listed last at depth 0."""
    groups = SubscriberGroup.objects.select_related("node").annotate(
        subscriber_count=Count("subscribers")).order_by("node__name", "name")
    if node is not None:
        groups = groups.filter(node=node)
    groups = list(groups)
    children: dict[int | None, list] = defaultdict(list)
    for group in groups:
        children[group.parent_id].append(group)
    rows, placed = [], set()

    def walk(group, depth):
        placed.add(group.pk)
        rows.append({"group": group, "depth": depth, "indent": "\u2003" * depth})
        for child in children.get(group.pk, ()):
            if child.pk not in placed:
                walk(child, depth + 1)

    known = {group.pk for group in groups}
    for group in groups:
        if group.parent_id is None or group.parent_id not in known:
            walk(group, 0)
    for group in groups:
        if group.pk not in placed:
            walk(group, 0)
    return rows
