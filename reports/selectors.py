"""R11.3: the reports' aggregates over stored calls (and, for a provider, over charges and
payments). One function per report, each taking the same filters and returning a `Report`:
rows of {key, calls, seconds, cost, currency}, one per key and currency (money is never
added across currencies), and the totals per currency of the filtered set.

Every sum is a GROUP BY in the database; Python only arranges the aggregated rows (the
subtotals of a group tree, the merge of the concurrency of an hour with its sums).

Filters (all optional; a report run by the page or the command always has the period):
  day_from, day_to   whole days [from, to] on each call's own device's calendar, as the
                     calls page cuts them (billing.selectors.call_list)
  node, device       where the calls were made (instances or ids)
  group              a group and every group below it
  subscriber         one subscriber
  call_type, direction
  top                how many rows a top-N report keeps (per currency)
"""
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    DateField,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import (
    Coalesce,
    Concat,
    ExtractHour,
    NullIf,
    RowNumber,
    TruncDate,
    TruncHour,
    TruncMonth,
)

from billing.models import Charge, Device, Payment, SubscriberGroup
from billing.selectors import call_list, group_subtree_ids
from tariffs.choices import CallType, Direction

# Costs are stored to 4 places (billing.Call.cost); sums keep them exact.
COST_PLACES = Decimal("0.0001")
ZERO = Decimal("0.0000")
DEFAULT_TOP = 10
# A call this short (talk time, seconds) or shorter, but answered, is a "short call".
SHORT_CALL_SECONDS = 10
CALL_MEASURES = ("calls", "seconds", "cost")
# A payment's currency on an account never charged (billing.selectors.account_currency).
DEFAULT_CURRENCY = "UAH"


@dataclass
class Report:
    """What every report returns. `rows` are dicts with "key", the report's `measures`
    and "currency" (plus "level" in by_group: the depth in the group tree; "ref": the
    subscriber's id where the key is one); `totals` are one dict per currency with the
    measures."""

    name: str
    rows: list[dict]
    totals: list[dict]
    measures: tuple[str, ...] = CALL_MEASURES
    notes: list[str] = field(default_factory=list)


def _cost(value) -> Decimal:
    return (value or ZERO).quantize(COST_PLACES)


def _id(value):
    return getattr(value, "pk", value)


def calls_filtered(filters: dict):
    """The calls a report counts: billing's call_list with the report's filters (its
    cut of days in each device's zone, its group subtree) and the node, unordered."""
    wanted = {key: _id(filters.get(key)) for key in ("device", "subscriber", "group")}
    wanted.update({key: filters.get(key) for key in ("day_from", "day_to", "call_type",
                                                      "direction")})
    qs = call_list(filters=wanted).order_by()
    if filters.get("node"):
        qs = qs.filter(device__node=_id(filters["node"]))
    return qs


def _call_sums(qs):
    return qs.annotate(calls=Count("id"), seconds=Sum("duration", default=0),
                       cost=Sum("cost", default=ZERO))


def call_totals(qs) -> list[dict]:
    """The totals of a set of calls, one dict per currency."""
    return [{"currency": r["currency"], "calls": r["calls"], "seconds": r["seconds"],
             "cost": _cost(r["cost"])}
            for r in _call_sums(qs.order_by().values("currency")).order_by("currency")]


def _rows(values, key, **extra) -> list[dict]:
    """Aggregated value dicts as report rows."""
    rows = []
    for r in values:
        row = {"key": r[key], "calls": r["calls"], "seconds": r["seconds"],
               "cost": _cost(r["cost"]), "currency": r["currency"]}
        for name, source in extra.items():
            row[name] = r[source]
        rows.append(row)
    return rows


def _grouped(qs, key: str, order=None) -> list[dict]:
    """Rows of calls grouped by `key` and currency, by key (None last) unless `order`."""
    values = _call_sums(qs.values(key, "currency"))
    values = values.order_by(*(order or [F(key).asc(nulls_last=True)]), "currency")
    return _rows(values, key)


def _top(qs, key: str, top: int) -> list[dict]:
    """The `top` keys by cost within each currency (then by calls, then by key)."""
    ranked = _call_sums(qs.values(key, "currency")).annotate(rank=Window(
        RowNumber(), partition_by=[F("currency")],
        order_by=[F("cost").desc(), F("calls").desc(), F(key).asc(nulls_last=True)]))
    ranked = ranked.filter(rank__lte=top).order_by("currency", "rank")
    return _rows(ranked, key)


def totals_of(rows) -> list[dict]:
    """The totals per currency of rows that share out the calls (each call in one row):
    added up from the aggregates, one query fewer than `call_totals`."""
    totals: dict[str, dict] = {}
    for row in rows:
        total = totals.setdefault(row["currency"], {"currency": row["currency"], "calls": 0,
                                                    "seconds": 0, "cost": ZERO})
        for measure in CALL_MEASURES:
            total[measure] += row[measure] or 0
    for total in totals.values():
        total["cost"] = _cost(total["cost"])
    return [totals[currency] for currency in sorted(totals)]


def _report(name, filters, rows_of, *, partition=True) -> Report:
    """A report of `rows_of` the filtered calls. Its totals are added up from the rows
    when they share out the calls (`partition`), else asked of the database (a top-N
    keeps only some rows)."""
    qs = calls_filtered(filters)
    rows = rows_of(qs)
    return Report(name, rows, totals_of(rows) if partition else call_totals(qs))


# -- grouped by who, what, where

def by_subscriber(*, filters: dict) -> Report:
    """R11.3: cost and duration by subscriber; calls of no subscriber's number have the key
    None (unknown numbers and incoming calls to numbers in no directory)."""
    return _report("by_subscriber", filters, lambda qs: _subscriber_rows(qs))


def _subscriber_rows(qs) -> list[dict]:
    values = _call_sums(qs.values("subscriber__full_name", "subscriber_id", "currency"))
    values = values.order_by(F("subscriber__full_name").asc(nulls_last=True), "subscriber_id",
                             "currency")
    return _rows(values, "subscriber__full_name", ref="subscriber_id")


def by_destination(*, filters: dict) -> Report:
    """R11.3: by destination: the name of the tariff that priced the call (its code's
    class, e.g. "Kyiv", "Mobile UA"); unpriced calls have the key None."""
    return _report("by_destination", filters,
                   lambda qs: _grouped(qs, "tariff__name"))


def by_call_type(*, filters: dict) -> Report:
    """R11.3: by call type (tariffs.choices.CallType), in the types' order; the key is the
    type's name."""
    def rows_of(qs):
        rows = _grouped(qs, "call_type", order=["call_type"])
        for row in rows:
            row["key"] = CallType(row["key"]).label
        return rows
    return _report("by_call_type", filters, rows_of)


def by_operator(*, filters: dict) -> Report:
    """R11.3: by operator (carrier) that carried the call; None where none did."""
    return _report("by_operator", filters,
                   lambda qs: _grouped(qs, "operator__name"))


def by_route(*, filters: dict) -> Report:
    """R11.3: by route: "device/route" as the CDR names the trunk; None without one."""
    def rows_of(qs):
        route = Case(When(trunk="", then=Value(None)),
                     default=Concat("device__name", Value("/"), "trunk"),
                     output_field=CharField())
        return _grouped(qs.annotate(route_key=route), "route_key")
    return _report("by_route", filters, rows_of)


def by_group(*, filters: dict) -> Report:
    """R11.3: by group, each group's row holding its whole subtree (its own subscribers'
    calls and those of every group below it), in tree order; "level" is the depth (0 for
    a top group, or for the filtered group). The key is the group's path from the top of
    its tree ("Sales / Inside sales"). Calls of no group (unknown numbers, subscribers
    outside the tree) come last with the key None."""
    qs = calls_filtered(filters)
    own = list(_call_sums(qs.values("subscriber__group_id", "currency")).order_by())
    groups = {g["id"]: g for g in SubscriberGroup.objects.values("id", "parent_id", "name",
                                                                   "node__name")}
    # Every group's subtree sums: its own calls added to it and to each group above it.
    sums: dict[int | None, dict[str, list]] = defaultdict(dict)
    for r in own:
        chain = _ancestors(r["subscriber__group_id"], groups)
        for group_id in chain or [None]:
            s = sums[group_id].setdefault(r["currency"], [0, 0, ZERO])
            s[0] += r["calls"]
            s[1] += r["seconds"]
            s[2] += r["cost"] or ZERO
    children: dict[int | None, list[int]] = defaultdict(list)
    for g in sorted(groups.values(), key=lambda g: (g["node__name"], g["name"])):
        children[g["parent_id"] if g["parent_id"] in groups else None].append(g["id"])
    top = [_id(filters["group"])] if filters.get("group") else children[None]
    rows: list[dict] = []

    def walk(group_id, level, path):
        if group_id not in sums:
            return
        path = [*path, groups[group_id]["name"]]
        for currency, (calls, seconds, cost) in sorted(sums[group_id].items()):
            rows.append({"key": " / ".join(path), "calls": calls, "seconds": seconds,
                         "cost": _cost(cost), "currency": currency, "level": level})
        for child in children[group_id]:
            walk(child, level + 1, path)

    for group_id in top:
        walk(group_id, 0, [groups[a]["name"] for a in reversed(_ancestors(group_id, groups)[1:])]
             if group_id in groups else [])
    for currency, (calls, seconds, cost) in sorted(sums.get(None, {}).items()):
        rows.append({"key": None, "calls": calls, "seconds": seconds, "cost": _cost(cost),
                     "currency": currency, "level": 0})
    return Report("by_group", rows, totals_of(own))


def _ancestors(group_id, groups) -> list[int]:
    """The group and those above it, nearest first ([] for no group)."""
    chain: list[int] = []
    while group_id is not None and group_id in groups and group_id not in chain:
        chain.append(group_id)
        group_id = groups[group_id]["parent_id"]
    return chain


# -- grouped by time, in each call's device's zone

def _zones() -> dict[str, list[int]]:
    """The devices' ids by time zone."""
    zones: dict[str, list[int]] = defaultdict(list)
    for device_id, zone in Device.objects.values_list("id", "timezone"):
        zones[zone].append(device_id)
    return zones


def _local(expression, function, output_field, zones):
    """`function(expression, tzinfo=...)` in the zone of each call's device: one CASE in
    the query rather than one query per zone."""
    return Case(*(When(device_id__in=ids, then=function(expression, tzinfo=zoneinfo.ZoneInfo(zone)))
                  for zone, ids in sorted(zones.items())),
                default=Value(None), output_field=output_field)


def _naive(value):
    """A local time bucket as its wall-clock value: SQLite's driver reads it back as if
    it were UTC, PostgreSQL's as naive; either way the digits are the device's."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return value


def by_day(*, filters: dict) -> Report:
    """R11.3: by day of the device's calendar (the key is the date)."""
    def rows_of(qs):
        day = _local("start", TruncDate, DateField(), _zones())
        rows = _grouped(qs.annotate(day=day), "day", order=["day"])
        for row in rows:
            row["key"] = _naive(row["key"])
        return rows
    return _report("by_day", filters, rows_of)


def by_hour(*, filters: dict) -> Report:
    """R11.3: by hour of the day on the device's clock (the key is 0-23)."""
    def rows_of(qs):
        hour = _local("start", ExtractHour, IntegerField(), _zones())
        return _grouped(qs.annotate(hour=hour), "hour", order=["hour"])
    return _report("by_hour", filters, rows_of)


def busiest_hours(*, filters: dict) -> Report:
    """R11.3: the `top` busiest clock hours of the period (by calls started in them, on
    the device's clock; the key is the hour's start), with their sums per currency and
    "concurrent": the most calls in progress at once within the hour (calls that started
    before the period are not counted in it). Devices in different zones share one
    timeline; their hours are each on their own clock."""
    qs = calls_filtered(filters)
    zones = _zones()
    slot = _local("start", TruncHour, DateTimeField(), zones)
    sums = list(_call_sums(qs.annotate(slot=slot).values("slot", "currency")).order_by())
    calls_in: dict[datetime, int] = defaultdict(int)
    for r in sums:
        r["slot"] = _naive(r["slot"])
        calls_in[r["slot"]] += r["calls"]
    top = int(filters.get("top") or DEFAULT_TOP)
    chosen = sorted(calls_in, key=lambda s: (-calls_in[s], s))[:top]
    peaks = _concurrency(qs, zones)
    rank = {s: i for i, s in enumerate(chosen)}
    rows = [{"key": r["slot"], "calls": r["calls"], "seconds": r["seconds"],
             "cost": _cost(r["cost"]), "currency": r["currency"],
             "concurrent": peaks.get(r["slot"], 0)}
            for r in sums if r["slot"] in rank]
    rows.sort(key=lambda r: (rank[r["key"]], r["currency"]))
    totals = call_totals(qs)
    peak = max(peaks.values(), default=0)
    for total in totals:
        total["concurrent"] = peak
    return Report("busiest_hours", rows, totals, measures=(*CALL_MEASURES, "concurrent"))


def _concurrency(qs, zones) -> dict[datetime, int]:
    """The most calls in progress at once in each clock hour: a sweep over the starts
    (+1) and ends (-1) of the calls, in the database (a running SUM over the events in
    time order, ends before starts at the same instant). After an event the running sum is
    the calls in progress; before an end it was one more: the peak of an hour is the
    largest of those over its events (the count carried into it is the value before its
    first event, which is one of them)."""
    talked = qs.filter(duration__gt=0)
    end = ExpressionWrapper(F("start") + ExpressionWrapper(
        # As IntegerField: SQLite's backend refuses a PositiveIntegerField times a duration.
        ExpressionWrapper(F("duration"), output_field=IntegerField()) * Value(timedelta(seconds=1)),
        output_field=DurationField()),
        output_field=DateTimeField())
    # An end at 11:00:00 ends a call of the hour before.
    last = ExpressionWrapper(end - Value(timedelta(microseconds=1)), output_field=DateTimeField())
    starts = talked.annotate(slot=_local("start", TruncHour, DateTimeField(), zones),
                             t=F("start"), d=Value(1)).values("slot", "t", "d")
    ends = talked.annotate(slot=_local(last, TruncHour, DateTimeField(), zones),
                           t=end, d=Value(-1)).values("slot", "t", "d")
    try:
        events, params = starts.union(ends, all=True).query.sql_with_params()
    except EmptyResultSet:  # filters that no call can match (a period with no device)
        return {}
    # The inner query's columns are selected by their names, quoted as the backend quotes;
    # nothing but those names and the ORM's own SQL is put in the text (values are params).
    slot, t, d = (connection.ops.quote_name(name) for name in ("slot", "t", "d"))
    sql = (f"SELECT {slot}, MAX(CASE WHEN {d} < 0 THEN n + 1 ELSE n END) FROM ("  # noqa: S608
           f"SELECT {slot}, {d}, SUM({d}) OVER (ORDER BY {t}, {d} ROWS BETWEEN UNBOUNDED "
           f"PRECEDING AND CURRENT ROW) AS n FROM ({events}) ev) r GROUP BY {slot}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {_naive(slot): int(peak) for slot, peak in cursor.fetchall() if slot is not None}


# -- top-N

def top_subscribers(*, filters: dict) -> Report:
    """R11.3: the `top` subscribers by cost, within each currency."""
    top = int(filters.get("top") or DEFAULT_TOP)
    return _report("top_subscribers", filters,
                   lambda qs: _top(qs.filter(subscriber__isnull=False), "subscriber__full_name", top),
                   partition=False)


def top_destinations(*, filters: dict) -> Report:
    """R11.3: the `top` destinations (tariff names) by cost, within each currency."""
    top = int(filters.get("top") or DEFAULT_TOP)
    return _report("top_destinations", filters,
                   lambda qs: _top(qs.filter(tariff__isnull=False), "tariff__name", top),
                   partition=False)


def top_numbers(*, filters: dict) -> Report:
    """R11.3: the `top` numbers dialled (normalised; as dialled where the number was not
    normalised) by cost, within each currency."""
    top = int(filters.get("top") or DEFAULT_TOP)
    number = Coalesce(NullIf("normalized", Value("")), NullIf("dialled", Value("")))

    def rows_of(qs):
        return _top(qs.annotate(number=number).filter(number__isnull=False), "number", top)
    return _report("top_numbers", filters, rows_of, partition=False)


# -- calls to look at

def unknown_numbers(*, filters: dict) -> Report:
    """R6.3, R11.3: calls made from numbers that were in no subscriber's directory at the
    time (no subscriber; incoming calls are not counted), by the originating number."""
    qs = calls_filtered(filters).filter(subscriber__isnull=True).exclude(
        direction=Direction.INCOMING)
    rows = _grouped(qs, "extension", order=["extension"])
    return Report("unknown_numbers", rows, totals_of(rows))


def unanswered(*, filters: dict) -> Report:
    """R11.3: calls without talk time (duration 0), by subscriber (None: no subscriber)."""
    qs = calls_filtered(filters).filter(duration=0)
    rows = _subscriber_rows(qs)
    return Report("unanswered", rows, totals_of(rows))


def short_calls(*, filters: dict) -> Report:
    """R11.3: calls with talk time of 1 to SHORT_CALL_SECONDS seconds, by subscriber."""
    limit = getattr(settings, "REPORTS_SHORT_CALL_SECONDS", SHORT_CALL_SECONDS)
    qs = calls_filtered(filters).filter(duration__gt=0, duration__lte=limit)
    rows = _subscriber_rows(qs)
    return Report("short_calls", rows, totals_of(rows))


# -- a provider's accounts

ACCOUNT_MEASURES = ("charges", "payments", "balance")


def charges_payments(*, filters: dict) -> Report:
    """R7, R11.3: a provider's charges and payments by month (the key is the month's first
    day): charges by the start of their period, payments by their date, per currency;
    "balance" is payments minus charges. A payment carries no currency of its own
    (billing.Payment): it counts in its account's currency, as the account's page counts
    it.
    The node, device, call type and direction filters do not apply."""
    who = Q()
    if filters.get("subscriber"):
        who &= Q(subscriber=_id(filters["subscriber"]))
    if filters.get("group"):
        who &= Q(subscriber__group__in=group_subtree_ids(_id(filters["group"])))
    if filters.get("node"):
        who &= Q(subscriber__group__node=_id(filters["node"]))
    charges = Charge.objects.filter(who)
    payments = Payment.objects.filter(who)
    if filters.get("day_from"):
        charges = charges.filter(period_start__gte=filters["day_from"])
        payments = payments.filter(date__gte=filters["day_from"])
    if filters.get("day_to"):
        charges = charges.filter(period_start__lte=filters["day_to"])
        payments = payments.filter(date__lte=filters["day_to"])
    # The currency most of the account's charges are in (the first by name on a tie), the
    # operators' default on an account never charged: billing.selectors' account_currency,
    # here as a subquery so that payments are summed in the database.
    account_currency = Subquery(
        Charge.objects.filter(subscriber=OuterRef("subscriber")).order_by().values("currency")
        .annotate(n=Count("id")).order_by("-n", "currency").values("currency")[:1])
    sums: dict[tuple, dict] = {}

    def add(values, measure):
        for r in values:
            key = (_naive(r["month"]), r["currency"] or "")
            row = sums.setdefault(key, {"key": key[0], "charges": ZERO, "payments": ZERO,
                                        "currency": key[1]})
            row[measure] += r["amount"] or ZERO

    add(charges.annotate(month=TruncMonth("period_start")).values("month", "currency")
        .annotate(amount=Sum("amount")).order_by(), "charges")
    add(payments.annotate(month=TruncMonth("date"),
                             currency=Coalesce(account_currency, Value(DEFAULT_CURRENCY)))
        .values("month", "currency").annotate(amount=Sum("amount")).order_by(), "payments")
    rows = [sums[k] for k in sorted(sums)]
    totals: dict[str, dict] = {}
    for row in rows:
        row["charges"], row["payments"] = _cost(row["charges"]), _cost(row["payments"])
        row["balance"] = row["payments"] - row["charges"]
        total = totals.setdefault(row["currency"], {"currency": row["currency"], "charges": ZERO,
                                                    "payments": ZERO, "balance": ZERO})
        for measure in ACCOUNT_MEASURES:
            total[measure] += row[measure]
    return Report("charges_payments", rows, [totals[c] for c in sorted(totals)],
                  measures=ACCOUNT_MEASURES)


def period_days(day_from: date, day_to: date) -> int:
    """How many days a period spans, both ends included."""
    return (day_to - day_from).days + 1
