"""Writes of the topology the operator edits in the browser (R1, R3.1, R4.2): nodes,
devices with their dial plan, routes and gateways, the group tree, a node's holidays.

Each service validates the whole row (the model's own rules, `full_clean`) before it
writes, so a caller that skipped a form (the API, a script) gets the same refusals; a
refusal is a ValidationError whose messages are keyed by field, as forms show them.
Deletes that the database would refuse (calls keep their device: PROTECT) are refused
here first, with the count, and never reach it."""
import zoneinfo
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.models import Call, Device, Holiday, Node, Route, SubscriberGroup
from tariffs.models import Operator, TariffPlan

NODE_FIELDS = ("name", "country", "description")
# R3.1: the dial plan, in the order the device's form shows it.
DIAL_PLAN_FIELDS = ("access_code", "national_prefix", "international_prefix", "country_code",
                    "area_code", "extension_length", "extension_pattern", "service_numbers",
                    "auth_code_position", "auth_code_length")
DEVICE_FIELDS = ("node", "name", "type", "timezone", *DIAL_PLAN_FIELDS, "default_operator",
                 "default_plan")
ROUTE_FIELDS = ("name", "kind", "operator")
GROUP_FIELDS = ("name", "parent")  # a group stays on the node it was made on
HOLIDAY_FIELDS = ("node", "date", "name")


class DeleteRefused(Exception):
    """A delete the database would refuse, or that would lose what must be kept (a device's
    calls); the message says why, for the operator."""


def _fields(allowed: tuple[str, ...], values: dict) -> dict:
    unknown = set(values) - set(allowed)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    return values


def validated_save(instance, errors: dict | None = None):
    """The row validated as a whole (fields, the model's clean, unique constraints) with the
    refusals a service found itself (`errors`, by field: those fields are not checked
    twice), then written."""
    errors = {field: list(messages) for field, messages in (errors or {}).items()}
    try:
        instance.full_clean(exclude=list(errors))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    instance.save()
    return instance


def _assign(instance, values: dict):
    for name, value in values.items():
        setattr(instance, name, value)
    return instance


def timezone_errors(name: str) -> dict:
    """R1.1: a device's time zone must be one the system knows (IANA, as Europe/Kyiv)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return {"timezone": [_("“%(zone)s” is not a time zone the system knows: write it as "
                               "Region/City, as Europe/Kyiv.") % {"zone": name}]}
    return {}


# -- nodes

def node_create(*, name: str, country: str = "", description: str = "") -> Node:
    """R1.1: a node ("communication node")."""
    with transaction.atomic():
        return validated_save(Node(name=name.strip(), country=country.strip().upper(),
                          description=description))


def node_update(*, node: Node, **values) -> Node:
    """R1.1: change a node's name, country or description."""
    values = _fields(NODE_FIELDS, values)
    if "country" in values:
        values["country"] = (values["country"] or "").strip().upper()
    with transaction.atomic():
        return validated_save(_assign(node, values))


def node_delete_refusal(node: Node) -> str:
    """Why `node` cannot be removed ("" when it can): it has devices."""
    devices = Device.objects.filter(node=node).count()
    if not devices:
        return ""
    why = ngettext("Node %(node)s has %(count)d device: remove it or move it to another node "
                   "first.",
                   "Node %(node)s has %(count)d devices: remove them or move them to another "
                   "node first.", devices) % {"node": node.name, "count": devices}
    calls = Call.objects.filter(device__node=node).count()
    if calls:
        why += " " + ngettext("Its devices have %(count)d call, and a device with calls is "
                              "never removed.",
                              "Its devices have %(count)d calls, and a device with calls is "
                              "never removed.", calls) % {"count": calls}
    return why


def node_delete(*, node: Node) -> None:
    """R1.1: remove a node with its groups and holidays; refused while it has devices (they
    are removed first, and one with calls never is)."""
    with transaction.atomic():
        refusal = node_delete_refusal(node)
        if refusal:
            raise DeleteRefused(refusal)
        node.delete()


# -- devices

def device_create(*, node: Node, name: str, type: str, timezone: str = "UTC",
                  default_operator: Operator | None = None,
                  default_plan: TariffPlan | None = None, **dial_plan) -> Device:
    """R1.1, R3.1: a telephone system with its time zone and dial plan."""
    dial_plan = _fields(DIAL_PLAN_FIELDS, dial_plan)
    with transaction.atomic():
        device = Device(node=node, name=name.strip(), type=type, timezone=timezone.strip(),
                        default_operator=default_operator, default_plan=default_plan)
        _assign(device, dial_plan)
        return validated_save(device, timezone_errors(device.timezone))


def device_update(*, device: Device, **values) -> Device:
    """R1.1, R3.1: change a device's node, name, type, time zone, dial plan or default
    carrier and plan. Calls stored already keep how they were read until they are rated
    again (R4.5)."""
    values = _fields(DEVICE_FIELDS, values)
    if "timezone" in values:
        values["timezone"] = (values["timezone"] or "").strip()
    with transaction.atomic():
        _assign(device, values)
        return validated_save(device, timezone_errors(device.timezone))


def device_delete_refusal(device: Device) -> str:
    """Why `device` cannot be removed ("" when it can): it has calls."""
    calls = Call.objects.filter(device=device).count()
    if not calls:
        return ""
    return ngettext("Device %(device)s has %(count)d call, and calls keep their device: it "
                    "cannot be removed.",
                    "Device %(device)s has %(count)d calls, and calls keep their device: it "
                    "cannot be removed.", calls) % {"device": device.name, "count": calls}


def device_delete(*, device: Device) -> None:
    """R1.1: remove a device with its numbers, routes and observers; refused while it has
    calls (a call keeps its device: the database protects them)."""
    with transaction.atomic():
        refusal = device_delete_refusal(device)
        if refusal:
            raise DeleteRefused(refusal)
        device.delete()


# -- routes and gateways

def route_create(*, device: Device, name: str, kind: str, operator: Operator) -> Route:
    """R1.2: a route (trunk group) or gateway of a device, bound to its carrier."""
    with transaction.atomic():
        return validated_save(Route(device=device, name=name.strip(), kind=kind, operator=operator))


def route_update(*, route: Route, **values) -> Route:
    """R1.2: rename a route, change its kind or its carrier (calls rated already keep
    theirs until they are rated again, R4.5)."""
    values = _fields(ROUTE_FIELDS, values)
    with transaction.atomic():
        return validated_save(_assign(route, values))


def route_delete(*, route: Route) -> None:
    """R1.2: remove a route; its calls are kept and keep the route's name (trunk), without
    the reference."""
    with transaction.atomic():
        route.delete()


# -- groups

def _cycle_check(group: SubscriberGroup, parent: SubscriberGroup | None) -> None:
    if parent is None:
        return
    if group.node_id is not None and parent.node_id != group.node_id:
        raise ValidationError({"parent": _(
            "%(parent)s belongs to node %(node)s: a group's parent is on the same node.")
            % {"parent": parent.name, "node": parent.node.name}})
    if group.pk is None:
        return
    ancestor, seen = parent, set()
    while ancestor is not None and ancestor.pk not in seen:
        if ancestor.pk == group.pk:
            if parent.pk == group.pk:
                message = _("A group cannot be its own parent.")
            else:
                message = _("%(parent)s is inside %(group)s: a group cannot be placed under "
                            "one of its own subgroups.") % {"parent": parent.name,
                                                             "group": group.name}
            raise ValidationError({"parent": message})
        seen.add(ancestor.pk)
        ancestor = ancestor.parent


def group_create(*, node: Node, name: str, parent: SubscriberGroup | None = None
                 ) -> SubscriberGroup:
    """R1.3: a group (department) of a node, at its root or under a parent of that node."""
    with transaction.atomic():
        group = SubscriberGroup(node=node, name=name.strip(), parent=parent)
        _cycle_check(group, parent)
        return validated_save(group)


def group_update(*, group: SubscriberGroup, **values) -> SubscriberGroup:
    """R1.3: rename a group or move it within its node's tree; a move under one of its own
    subgroups (a cycle) is refused."""
    values = _fields(GROUP_FIELDS, values)
    with transaction.atomic():
        # The node's groups locked: two moves at once could each pass the cycle check
        # and together make a cycle.
        list(SubscriberGroup.objects.select_for_update().filter(node_id=group.node_id)
             .values_list("pk", flat=True))
        _assign(group, values)
        _cycle_check(group, group.parent)
        return validated_save(group)


def group_delete(*, group: SubscriberGroup) -> None:
    """R1.3: remove a group with its subgroups; their subscribers stay, without a group."""
    with transaction.atomic():
        group.delete()


# -- holidays

def holiday_create(*, node: Node, date: date, name: str = "") -> Holiday:
    """R4.2: a holiday of a node, on top of its country's public holidays."""
    with transaction.atomic():
        return validated_save(Holiday(node=node, date=date, name=name.strip()))


def holiday_update(*, holiday: Holiday, **values) -> Holiday:
    """R4.2: move or rename a node's holiday (calls rated already keep their rate until
    they are rated again, R4.5)."""
    values = _fields(HOLIDAY_FIELDS, values)
    with transaction.atomic():
        return validated_save(_assign(holiday, values))


def holiday_delete(*, holiday: Holiday) -> None:
    """R4.2: remove a node's holiday."""
    with transaction.atomic():
        holiday.delete()
