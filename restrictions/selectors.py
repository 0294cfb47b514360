"""Reads of the restrictions: group trees, zones and months, a limit's usage, who is closed,
and the extensions a closure reaches on the PBXs."""
import zoneinfo
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum

from billing.models import MonthUsage, PhoneNumber, Subscriber, SubscriberGroup
from restrictions.models import Closure, Limit, PbxChange, PbxControl


def group_tree() -> dict[int, int | None]:
    """Every group's parent, by id."""
    return dict(SubscriberGroup.objects.values_list("pk", "parent_id"))


def group_ancestors(group_id: int | None, parents: dict[int, int | None]) -> list[int]:
    """The group and its ancestors, nearest first (a cycle, which clean() forbids, ends it)."""
    chain: list[int] = []
    while group_id is not None and group_id not in chain:
        chain.append(group_id)
        group_id = parents.get(group_id)
    return chain


def group_subtree(group_id: int, parents: dict[int, int | None]) -> set[int]:
    """The group and all the groups below it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for child, parent in parents.items():
        children[parent].append(child)
    found, todo = set(), [group_id]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo += children.get(current, [])
    return found


def zone_of_subscriber(subscriber_id: int) -> zoneinfo.ZoneInfo:
    """The time zone a subscriber's month is counted in: its device's (the device of its
    newest number), else the server's."""
    name = (PhoneNumber.objects.filter(subscriber_id=subscriber_id)
            .order_by("-valid_from").values_list("device__timezone", flat=True).first())
    return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)


def zone_of_group(group_id: int) -> zoneinfo.ZoneInfo:
    """A group's node's zone: that of the node's first device, else the server's."""
    name = (SubscriberGroup.objects.filter(pk=group_id)
            .values_list("node__devices__timezone", flat=True).order_by(
                "node__devices__name").first())
    return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)


def zones_of_limits(limits) -> dict[int, zoneinfo.ZoneInfo]:
    """The zone of each limit's month (zone_of_subscriber / zone_of_group), for many limits
    in two queries."""
    server = settings.TIME_ZONE
    subscriber_ids = {limit.subscriber_id for limit in limits if limit.subscriber_id}
    group_ids = {limit.group_id for limit in limits if limit.group_id}
    of_subscriber: dict[int, str] = {}
    if subscriber_ids:
        # The newest number of each subscriber last: what zone_of_subscriber picks.
        for subscriber_id, name in (PhoneNumber.objects.filter(subscriber_id__in=subscriber_ids)
                                    .order_by("subscriber_id", "valid_from")
                                    .values_list("subscriber_id", "device__timezone")):
            of_subscriber[subscriber_id] = name
    of_group: dict[int, str] = {}
    if group_ids:
        for group_id, name in (SubscriberGroup.objects.filter(pk__in=group_ids)
                               .order_by("pk", "-node__devices__name")
                               .values_list("pk", "node__devices__timezone")):
            if name:
                of_group[group_id] = name
    zones: dict[str, zoneinfo.ZoneInfo] = {}

    def zone(name: str | None) -> zoneinfo.ZoneInfo:
        name = name or server
        if name not in zones:
            zones[name] = zoneinfo.ZoneInfo(name)
        return zones[name]

    return {limit.pk: zone(of_subscriber.get(limit.subscriber_id) if limit.subscriber_id
                           else of_group.get(limit.group_id)) for limit in limits}


def limit_usages(months: dict[Limit, date], parents: dict[int, int | None]
                 ) -> dict[int, Decimal | int]:
    """What each limit has used in its month (limit_usage for many limits): the month's
    totals read in two queries, whatever the number of limits, and summed here."""
    used: dict[int, Decimal | int] = {limit.pk: (Decimal(0) if limit.money is not None else 0)
                                      for limit in months}
    subscriber_limits = [limit for limit in months if limit.subscriber_id is not None]
    group_limits = [limit for limit in months if limit.subscriber_id is None]
    month_set = set(months.values())
    if subscriber_limits:
        rows = (MonthUsage.objects.filter(
            month__in=month_set, subscriber_id__in={limit.subscriber_id for limit in
                                                    subscriber_limits})
            .values_list("subscriber_id", "month", "call_type", "currency", "seconds", "cost"))
        _add(used, subscriber_limits, months, rows, lambda limit: {limit.subscriber_id})
    if group_limits:
        subtrees = {limit.pk: group_subtree(limit.group_id, parents) for limit in group_limits}
        rows = (MonthUsage.objects.filter(
            month__in=month_set, subscriber__group_id__in=set().union(*subtrees.values()))
            .values_list("subscriber__group_id", "month", "call_type", "currency")
            .annotate(seconds=Sum("seconds"), cost=Sum("cost"))
            .values_list("subscriber__group_id", "month", "call_type", "currency", "seconds",
                         "cost").order_by())
        _add(used, group_limits, months, rows, lambda limit: subtrees[limit.pk])
    return used


def _add(used, limits, months, rows, owners_of) -> None:
    """Add each row (owner, month, call type, currency, seconds, cost) to the limits it
    counts towards: those whose owner set (subscriber, or groups of the subtree) holds it."""
    by_owner: dict[int, list[Limit]] = defaultdict(list)
    for limit in limits:
        for owner in owners_of(limit):
            by_owner[owner].append(limit)
    for owner, month, call_type, currency, seconds, cost in rows:
        for limit in by_owner.get(owner, ()):
            if months[limit] != month or (limit.call_types and call_type not in limit.call_types):
                continue
            if limit.money is not None:
                if currency == limit.currency:
                    used[limit.pk] += cost or 0
            else:
                used[limit.pk] += seconds or 0


def month_of(moment: datetime, zone: zoneinfo.ZoneInfo) -> date:
    return moment.astimezone(zone).date().replace(day=1)


def limit_usage(limit: Limit, month: date, parents: dict[int, int | None] | None = None
                ) -> Decimal | int:
    """What a limit has used in `month`: money in its currency, or seconds."""
    usage = MonthUsage.objects.filter(month=month)
    if limit.subscriber_id is not None:
        usage = usage.filter(subscriber_id=limit.subscriber_id)
    else:
        groups = group_subtree(limit.group_id, parents if parents is not None else group_tree())
        usage = usage.filter(subscriber__group_id__in=groups)
    if limit.call_types:
        usage = usage.filter(call_type__in=limit.call_types)
    if limit.money is not None:
        return usage.filter(currency=limit.currency).aggregate(s=Sum("cost"))["s"] or Decimal(0)
    return usage.aggregate(s=Sum("seconds"))["s"] or 0


def limits_of_subscribers(subscriber_ids, parents: dict[int, int | None]) -> list[Limit]:
    """The enabled limits that these subscribers' calls count towards: their own and those
    of their groups and the groups above."""
    groups = set()
    for group_id in Subscriber.objects.filter(pk__in=subscriber_ids).order_by().values_list(
            "group_id", flat=True).distinct():
        groups.update(group_ancestors(group_id, parents))
    return list(Limit.objects.filter(Q(subscriber_id__in=subscriber_ids) | Q(group_id__in=groups),
                                     enabled=True).select_related("subscriber", "group"))


def closed_subscribers(subscriber_ids, parents: dict[int, int | None]) -> set[int]:
    """Those of these subscribers that are closed: by a closure of their own or of one of
    their groups (or a group above)."""
    subscriber_ids = set(subscriber_ids)
    closed = set(Closure.objects.filter(subscriber_id__in=subscriber_ids,
                                        reopened_at__isnull=True).values_list(
        "subscriber_id", flat=True))
    closed_groups = set(Closure.objects.filter(group__isnull=False, reopened_at__isnull=True)
                        .values_list("group_id", flat=True))
    if closed_groups:
        for subscriber_id, group_id in Subscriber.objects.filter(
                pk__in=subscriber_ids - closed).values_list("pk", "group_id"):
            if closed_groups & set(group_ancestors(group_id, parents)):
                closed.add(subscriber_id)
    return closed


def subscribers_in_groups(group_ids) -> set[int]:
    return set(Subscriber.objects.filter(group_id__in=group_ids).values_list("pk", flat=True))


def extensions_of(subscriber_ids, day: date) -> list[tuple[int, str, int]]:
    """(device id, extension, subscriber id) of the numbers these subscribers hold on `day`
    on devices whose PBX the system controls (a connector)."""
    controlled = set(PbxControl.objects.exclude(connector={}).values_list("device_id", flat=True))
    if not controlled:
        return []
    rows = (PhoneNumber.objects.filter(subscriber_id__in=subscriber_ids, device_id__in=controlled,
                                       valid_from__lte=day)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day))
            .values_list("device_id", "dn", "subscriber_id").order_by("device_id", "dn"))
    return list(rows)


def restrictions_status() -> dict:
    """What `manage.py restrictions_status` prints: closures in force, PBX changes waiting
    or refused, and the controlled PBXs."""
    closures = [{
        "subscriber": c.subscriber.account_number if c.subscriber_id else None,
        "subscriber_name": c.subscriber.full_name if c.subscriber_id else None,
        "group": c.group.name if c.group_id else None,
        "cause": c.cause, "reason": c.reason, "by": c.closed_by, "since": c.closed_at,
    } for c in Closure.objects.filter(reopened_at__isnull=True).select_related("subscriber",
                                                                               "group")]
    changes = [{
        "device": p.device.name, "extension": p.extension, "action": p.action,
        "status": p.status, "attempts": p.attempts, "next_try_at": p.next_try_at,
        "error": p.last_error, "since": p.created_at,
    } for p in PbxChange.objects.filter(status__in=[PbxChange.Status.PENDING,
                                                    PbxChange.Status.FAILED,
                                                    PbxChange.Status.CONFLICT])
        .select_related("device").order_by("pk")]
    pbxs = [{
        "device": control.device.name, "connector": control.connector.get("type"),
        "last_contact_at": control.last_contact_at, "last_error": control.last_error,
        "last_error_at": control.last_error_at,
    } for control in PbxControl.objects.exclude(connector={}).select_related("device")]
    return {"closed": closures, "pbx_changes": changes, "pbxs": pbxs}
