"""site_config_export: the configuration in the database, in the file's format."""
import datetime
import re
from collections import defaultdict

from billing.models import Device, Node, RouteKind, Subscriber, SubscriberGroup, SubscriberType
from observers.models import ArchivePeriod, LogLevel, ObserverProfile
from observers.sources.settings import SOURCES
from restrictions.models import AuthCode, Limit
from scripts.models import ScriptBinding
from tariffs.models import Operator, TariffPlan
from tariscope.siteconfig.schema import DIAL_PLAN_FIELDS, model_default

# --- Export (the read) ----------------------------------------------------------------------

def _put(out: dict, key: str, value, default=""):
    """Write `key` unless it holds the default: what apply gives a key left out."""
    if value != default and value is not None:
        out[key] = value.isoformat() if isinstance(value, datetime.date) else value


def site_config_export() -> dict:
    """R1/R2.1/R6: the configuration in the database, in the file format.

    Keys whose value is the default are left out; applying the result to an empty
    database reproduces the configuration, and applying it to this one changes nothing.
    """
    out = {"operators": [], "plans": [], "nodes": [], "groups": [], "subscribers": []}
    for operator in Operator.objects.order_by("name"):
        item = {"name": operator.name, "currency": operator.currency}
        _put(item, "description", operator.description)
        out["operators"].append(item)
    for plan in TariffPlan.objects.order_by("name"):
        item = {"name": plan.name}
        _put(item, "description", plan.description)
        out["plans"].append(item)
    devices = defaultdict(list)
    for device in Device.objects.select_related(
            "default_operator", "default_plan", "pbx_control").order_by(
            "name").prefetch_related("routes__operator", "observers"):
        devices[device.node_id].append(_device_export(device))
    for node in Node.objects.order_by("name"):
        item = {"name": node.name}
        _put(item, "country", node.country)
        _put(item, "description", node.description)
        _put(item, "devices", devices[node.pk], [])
        out["nodes"].append(item)
    for group in SubscriberGroup.objects.select_related("node", "parent").order_by(
            "node__name", "name"):
        item = {"name": group.name, "node": group.node.name}
        _put(item, "parent", group.parent.name if group.parent else None)
        out["groups"].append(item)
    subscribers = Subscriber.objects.select_related("group__node", "plan").prefetch_related(
        "numbers__device").order_by("full_name", "account_number")
    for subscriber in subscribers:
        out["subscribers"].append(_subscriber_export(subscriber))
    out["scripts"] = []
    for binding in ScriptBinding.objects.select_related("profile").order_by(
            "profile__name", "event", "script"):
        item = {"profile": binding.profile.name, "event": binding.event, "script": binding.script}
        _put(item, "enabled", binding.enabled, True)
        _put(item, "timeout", binding.timeout, 10.0)
        _put(item, "interval", binding.interval, 0)
        out["scripts"].append(item)
    out["limits"] = [_limit_export(limit) for limit in Limit.objects.select_related(
        "subscriber", "group__node").order_by("pk")]
    out["auth_codes"] = []
    for code in AuthCode.objects.select_related("subscriber").order_by("code"):
        item = {"code": code.code, "subscriber": code.subscriber.account_number}
        _put(item, "enabled", code.enabled, True)
        _put(item, "description", code.description)
        out["auth_codes"].append(item)
    return {kind: items for kind, items in out.items() if items}


def _device_export(device: Device) -> dict:
    item = {"name": device.name, "type": device.type, "timezone": device.timezone}
    dial_plan = {}
    for key in DIAL_PLAN_FIELDS:
        _put(dial_plan, key, getattr(device, key), model_default(Device, key))
    numbers = device.service_numbers
    if numbers != model_default(Device, "service_numbers"):
        # A list reads better; the stored text is kept when a list would not give it back.
        as_list = numbers.split(",")
        plain_list = numbers and all(re.fullmatch(r"[^,\s]+", n) for n in as_list)
        dial_plan["service_numbers"] = as_list if plain_list else numbers
    _put(item, "dial_plan", dial_plan, {})
    _put(item, "default_operator", device.default_operator.name if device.default_operator
         else None)
    _put(item, "default_plan", device.default_plan.name if device.default_plan else None)
    routes = []
    for route in sorted(device.routes.all(), key=lambda r: r.name):
        route_item = {"name": route.name, "operator": route.operator.name}
        _put(route_item, "kind", route.kind, RouteKind.ROUTE)
        routes.append(route_item)
    _put(item, "routes", routes, [])
    observers = [_observer_export(p) for p in sorted(device.observers.all(), key=lambda p: p.name)]
    if len(observers) == 1:
        item["observer"] = observers[0]
    else:
        _put(item, "observers", observers, [])
    control = getattr(device, "pbx_control", None)  # the reverse one-to-one, when it exists
    if control is not None:
        _put(item, "connector", control.connector, {})
        _put(item, "call_control", control.call_control, {})
    return item


def _limit_export(limit: Limit) -> dict:
    if limit.subscriber_id is not None:
        item = {"subscriber": limit.subscriber.account_number}
    else:
        item = {"group": limit.group.name, "node": limit.group.node.name}
    if limit.money is not None:
        item.update(money=f"{limit.money:.2f}", currency=limit.currency)
    else:
        item["seconds"] = limit.seconds
    _put(item, "call_types", sorted(limit.call_types), [])
    _put(item, "warn_percent", limit.warn_percent)
    _put(item, "enabled", limit.enabled, True)
    return item


def _observer_export(profile: ObserverProfile) -> dict:
    item = {"name": profile.name, "source": profile.source}
    required, optional = SOURCES.get(profile.source, ((), {}))
    settings = profile.settings if isinstance(profile.settings, dict) else {}
    for key in (*required, *optional):
        _put(item, key, settings.get(key), None)
    _put(item, "archive_period", profile.archive_period, ArchivePeriod.MONTH)
    _put(item, "log_level", LogLevel(profile.log_level).name.lower(), "status")
    _put(item, "enabled", profile.enabled, True)
    _put(item, "remote", profile.remote, False)
    _put(item, "archive_dir", profile.archive_dir)
    return item


def _subscriber_export(subscriber: Subscriber) -> dict:
    item = {"name": subscriber.full_name}
    if subscriber.group is not None:
        # The node too: group names repeat across nodes.
        item["group"] = subscriber.group.name
        item["node"] = subscriber.group.node.name
    _put(item, "plan", subscriber.plan.name if subscriber.plan else None)
    _put(item, "type", SubscriberType(subscriber.type).name.lower(), "individual")
    for key in ("connection_date", "contract_number", "contract_date", "account_number",
                "personal_code", "edrpou", "tax_code", "bank_code", "bank_name",
                "bank_account", "email"):
        _put(item, key, getattr(subscriber, key))
    numbers = []
    for number in sorted(subscriber.numbers.all(),
                         key=lambda n: (n.device.name, n.dn, n.valid_from)):
        number_item = {"dn": number.dn, "device": number.device.name,
                       "from": number.valid_from.isoformat()}
        _put(number_item, "to", number.valid_to)
        _put(number_item, "description", number.description)
        numbers.append(number_item)
    _put(item, "numbers", numbers, [])
    return item


