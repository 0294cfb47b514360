"""Validation of a site configuration (pure): the schema's errors and the checks no schema
can express, each with the path of its key."""
import datetime
import re
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from billing.models import Device, DeviceType
from observers.sources.settings import (
    SOURCE_KEYS,
    KeyPath,
    error_sort_key,
    observer_settings_problems,
    path_text,
    plain,
    schema_errors,
    value_at,
)
from restrictions.connectors import config_problems as connector_problems
from restrictions.control import call_control_problems
from tariscope.siteconfig.schema import VALIDATOR, max_length

# --- Validation (pure) ----------------------------------------------------------------------

@dataclass(frozen=True)
class Known:
    """What the database holds that a file may refer to by name, as plain data."""

    operators: frozenset[str] = frozenset()
    plans: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    # (node name, group name) -> parent group name or None
    groups: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    # full name -> account numbers of the subscribers bearing it
    subscribers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    observers: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()  # the subscribers' account numbers



def site_config_validate(data, *, known: Known | None = None) -> list[str]:
    """Every problem of `data`, one line each, prefixed with the path of the bad key.

    The schema's errors (types, ranges, unknown and missing keys) and those of the checks
    no schema can express (names repeated in the file, references to names neither in
    the file nor in `known`, time zones, date order, overlaps, group cycles), sorted by
    path so that they read in the order of the file.
    """
    data = plain(data)
    errors = set(schema_errors(data, VALIDATOR))
    if isinstance(data, dict):
        errors.update(_Checker(data, known or Known()).run())
    return [f"{path_text(path)}: {message}" for path, message in sorted(errors, key=error_sort_key)]




def _dicts(value) -> Iterator[tuple[int, dict]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item


def _str(item: dict, key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def date_or_none(value) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def observers_of(device: dict) -> Iterator[tuple[KeyPath, dict]]:
    """A device's observer profiles: `observer` (one) or `observers` (a list)."""
    if isinstance(device.get("observer"), dict):
        yield ("observer",), device["observer"]
    for index, observer in _dicts(device.get("observers")):
        yield ("observers", index), observer


class _Checker:
    """The checks the schema cannot express. Tolerates malformed parts (the schema pass
    reports those) so that every error of a file is found in one run."""

    def __init__(self, data: dict, known: Known):
        self.data = data
        self.known = known
        self.errors: list[tuple[KeyPath, str]] = []
        # Names the file defines, each with the path of its first definition.
        self.operators: dict[str, KeyPath] = {}
        self.plans: dict[str, KeyPath] = {}
        self.nodes: dict[str, KeyPath] = {}
        self.devices: dict[str, KeyPath] = {}
        self.groups: dict[tuple[str, str], KeyPath] = {}
        self.group_nodes: dict[str, set[str]] = defaultdict(set)  # group name -> its nodes
        self.observers: dict[str, KeyPath] = {}

    def error(self, path: KeyPath, message: str):
        self.errors.append((path, message))

    def unique(self, seen: dict, key, path: KeyPath, what: str):
        """Record `key` at `path`; a second occurrence is an error naming the first."""
        if key in seen:
            self.error(path, f"duplicate {what} (first at {path_text(seen[key])})")
        else:
            seen[key] = path

    def run(self) -> list[tuple[KeyPath, str]]:
        data = self.data
        for kind, seen in (("operators", self.operators), ("plans", self.plans),
                           ("nodes", self.nodes)):
            for index, item in _dicts(data.get(kind)):
                if _str(item, "name"):
                    self.unique(seen, item["name"], (kind, index, "name"), f"{kind[:-1]} name")
        self.devices_check()
        self.groups_check()
        self.subscribers_check()
        self.scripts_check()
        self.limits_check()
        self.auth_codes_check()
        return self.errors

    def refer(self, path: KeyPath, name, in_file, in_db, what: str):
        if isinstance(name, str) and name not in in_file and name not in in_db:
            self.error(path, f"unknown {what} {name!r} (neither in the file nor in the database)")

    def devices_check(self):
        observers, devices = self.observers, []
        for n, node in _dicts(self.data.get("nodes")):
            for d, device in _dicts(node.get("devices")):
                path = ("nodes", n, "devices", d)
                devices.append((path, device))
                if _str(device, "name"):
                    self.unique(self.devices, device["name"], path + ("name",), "device name")
                for rest, observer in observers_of(device):
                    if _str(observer, "name"):
                        self.unique(observers, observer["name"], path + rest + ("name",),
                                    "observer name")
        for path, device in devices:
            self.device_check(path, device)

    def device_check(self, path: KeyPath, device: dict):
        zone = _str(device, "timezone")
        if zone is not None:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.error(path + ("timezone",), f"unknown time zone {zone!r}")
        dial_plan = device.get("dial_plan")
        pattern = _str(dial_plan, "extension_pattern") if isinstance(dial_plan, dict) else None
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.error(path + ("dial_plan", "extension_pattern"),
                           f"not a valid regular expression: {exc}")
        if isinstance(dial_plan, dict) and isinstance(dial_plan.get("service_numbers"), list):
            joined = service_numbers_text(dial_plan["service_numbers"])
            limit = max_length(Device, "service_numbers")
            if len(joined) > limit:
                self.error(path + ("dial_plan", "service_numbers"),
                           f"longer than {limit} characters when joined with commas")
        self.refer(path + ("default_operator",), device.get("default_operator"),
                   self.operators, self.known.operators, "operator")
        self.refer(path + ("default_plan",), device.get("default_plan"),
                   self.plans, self.known.plans, "tariff plan")
        if device.get("observer") is not None and device.get("observers") is not None:
            self.error(path + ("observers",), "give either observer or observers, not both")
        device_type = _str(device, "type")
        for rest, observer in observers_of(device):
            settings = {key: value for key, value in observer.items() if key in SOURCE_KEYS}
            problems = observer_settings_problems(
                source=observer.get("source"), settings=settings,
                device_type=device_type if device_type in DeviceType.values else None)
            for key_path, message in problems:
                self.error(path + rest + key_path, message)
        if isinstance(device.get("connector"), dict):
            for problem in connector_problems(device["connector"]):
                self.error(path + ("connector",), problem)
        if isinstance(device.get("call_control"), dict):
            for problem in call_control_problems(device["call_control"]):
                self.error(path + ("call_control",), problem)
        routes = {}
        for r, route in _dicts(device.get("routes")):
            if _str(route, "name"):
                self.unique(routes, route["name"], path + ("routes", r, "name"),
                            "route name on this device")
            self.refer(path + ("routes", r, "operator"), route.get("operator"),
                       self.operators, self.known.operators, "operator")

    def scripts_check(self):
        """A binding names a profile of the file or the database, once per event and
        script; a periodic one needs its interval."""
        seen: dict = {}
        for index, item in _dicts(self.data.get("scripts")):
            path = ("scripts", index)
            self.refer(path + ("profile",), item.get("profile"), self.observers,
                       self.known.observers, "observer profile")
            if all(_str(item, key) for key in ("profile", "event", "script")):
                self.unique(seen, (item["profile"], item["event"], item["script"]),
                            path + ("script",), "binding of this script to this event")
            if item.get("event") == "periodic" and not item.get("interval"):
                self.error(path + ("interval",), "a periodic binding needs an interval "
                                                 "(seconds, more than 0)")

    def accounts(self) -> set[str]:
        """The account numbers the file gives its subscribers."""
        return {sub["account_number"] for _, sub in _dicts(self.data.get("subscribers"))
                if _str(sub, "account_number")}

    def limits_check(self):
        """R8.1: a limit of one subscriber (by account number) or one group, in money with
        its currency or in seconds; at most one limit per target, unit and call types."""
        accounts, seen = self.accounts(), {}
        for index, item in _dicts(self.data.get("limits")):
            path = ("limits", index)
            subscriber, group, node = (_str(item, key) for key in ("subscriber", "group", "node"))
            if (subscriber is None) == (group is None):
                self.error(path, "give either subscriber (an account number) or group")
            if subscriber is not None:
                self.refer(path + ("subscriber",), subscriber, accounts, self.known.accounts,
                           "subscriber account number")
                if node is not None:
                    self.error(path + ("node",), "only used with group (the node of the group)")
            if group is not None:
                self.group_ref(path, group, node)
            money, seconds = item.get("money"), item.get("seconds")
            if (money is None) == (seconds is None):
                self.error(path, "give either money (with currency) or seconds")
            if money is not None:
                self.money_check(path + ("money",), money)
                if not _str(item, "currency"):
                    self.error(path + ("currency",), "a limit in money needs its currency")
            elif item.get("currency") is not None:
                self.error(path + ("currency",), "only used with money")
            unit = "money" if money is not None else "seconds"
            types = tuple(sorted(t for t in item.get("call_types") or () if isinstance(t, int)))
            self.unique(seen, (subscriber, group, node, unit, types), path,
                        "limit of this target, unit and call types")

    def money_check(self, path: KeyPath, value):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return  # the schema's pattern reports it
        if amount.as_tuple().exponent < -2:
            self.error(path, f"{value} has more than two decimal places")
        elif amount <= 0:
            self.error(path, "must be more than 0")

    def group_ref(self, path: KeyPath, group: str, node: str | None, *,
                  node_checked: bool = False):
        """`group` (on `node`, when given) is known, and names one group."""
        holders = self.group_nodes.get(group, set())
        if node is not None:
            if not node_checked:
                self.refer(path + ("node",), node, self.nodes, self.known.nodes, "node")
            if node not in holders:
                self.error(path + ("group",), f"unknown group {group!r} on node {node!r} "
                           "(neither in the file nor in the database)")
        elif not holders:
            self.error(path + ("group",),
                       f"unknown group {group!r} (neither in the file nor in the database)")
        elif len(holders) > 1:
            self.error(path + ("group",), f"group {group!r} exists on nodes "
                       f"{', '.join(sorted(holders))}; add node to say which")

    def auth_codes_check(self):
        """R8.6: each code once, of a known subscriber."""
        accounts, seen = self.accounts(), {}
        for index, item in _dicts(self.data.get("auth_codes")):
            path = ("auth_codes", index)
            if _str(item, "code"):
                self.unique(seen, item["code"], path + ("code",), "authorization code")
            self.refer(path + ("subscriber",), item.get("subscriber"), accounts,
                       self.known.accounts, "subscriber account number")

    def groups_check(self):
        parents: dict[tuple[str, str], str | None] = dict(self.known.groups)
        for g, group in _dicts(self.data.get("groups")):
            path = ("groups", g)
            node, name = _str(group, "node"), _str(group, "name")
            self.refer(path + ("node",), group.get("node"), self.nodes, self.known.nodes, "node")
            if node and name:
                self.unique(self.groups, (node, name), path + ("name",), "group on this node")
                parents[(node, name)] = _str(group, "parent")
        for (node, name), path in self.groups.items():
            parent = parents[(node, name)]
            group_path = path[:-1]
            if parent is None:
                continue
            if (node, parent) not in parents:
                self.error(group_path + ("parent",), f"unknown group {parent!r} on node {node!r} "
                           "(neither in the file nor in the database)")
                continue
            chain, current = [name], parent
            while current is not None and current not in chain:
                chain.append(current)
                current = parents.get((node, current))
            if current == name:
                self.error(group_path + ("parent",),
                           "groups form a cycle: " + " -> ".join([*chain, name]))
        for node, name in parents:
            self.group_nodes[name].add(node)

    def subscribers_check(self):
        accounts, names, numbers = {}, {}, {}
        periods = defaultdict(list)  # (device, dn) -> [(from, to, path)]
        subscribers = list(_dicts(self.data.get("subscribers")))
        for s, sub in subscribers:
            if _str(sub, "account_number"):
                self.unique(accounts, sub["account_number"], ("subscribers", s, "account_number"),
                            "account number")
        for s, sub in subscribers:
            path = ("subscribers", s)
            name = _str(sub, "name")
            if name:
                names.setdefault(name, []).append(path)
            self.subscriber_refs(path, sub)
            if name and not sub.get("account_number"):
                self.subscriber_match(path, name, accounts)
            for i, number in _dicts(sub.get("numbers")):
                number_path = path + ("numbers", i)
                device, dn = _str(number, "device"), _str(number, "dn")
                self.refer(number_path + ("device",), number.get("device"),
                           self.devices, self.known.devices, "device")
                start, end = date_or_none(number.get("from")), date_or_none(number.get("to"))
                if start and end and end < start:
                    self.error(number_path + ("to",), f"{number['to']} is before from "
                               f"({number['from']})")
                    continue
                if device and dn and start:
                    key = (device, dn, start)
                    if key in numbers:
                        self.error(number_path, f"duplicate number {dn} on {device} from {start} "
                                   f"(first at {path_text(numbers[key])})")
                    else:
                        numbers[key] = number_path
                        periods[(device, dn)].append((start, end, number_path))
        for path_list in names.values():
            if len(path_list) > 1:
                for path in path_list:
                    sub = value_at(self.data, path)
                    if not sub.get("account_number"):
                        others = ", ".join(path_text(p) for p in path_list if p != path)
                        self.error(path + ("name",), f"the name is also used by {others}; give "
                                   "account_number to tell the subscribers apart")
        self.overlaps_check(periods)

    def subscriber_refs(self, path: KeyPath, sub: dict):
        self.refer(path + ("plan",), sub.get("plan"), self.plans, self.known.plans, "tariff plan")
        group, node = _str(sub, "group"), _str(sub, "node")
        if node is not None and sub.get("group") is None:
            self.error(path + ("node",), "only used with group (the node of the group)")
        self.refer(path + ("node",), sub.get("node"), self.nodes, self.known.nodes, "node")
        if group is not None:
            self.group_ref(path, group, node, node_checked=True)

    def subscriber_match(self, path: KeyPath, name: str, accounts: dict):
        """A subscriber without account_number is matched by name: it must be one row."""
        in_db = self.known.subscribers.get(name, ())
        if len(in_db) > 1:
            self.error(path + ("name",), f"{len(in_db)} subscribers in the database are named "
                       f"{name!r}; give account_number to say which")
        elif in_db and in_db[0] in accounts:
            self.error(path + ("name",), f"matches by name the database subscriber with account "
                       f"number {in_db[0]!r}, which {path_text(accounts[in_db[0]][:-1])} "
                       "also names; give account_number")

    def overlaps_check(self, periods):
        for (device, dn), spans in periods.items():
            spans.sort(key=lambda span: span[0])
            for (start_a, end_a, path_a), (start_b, _, path_b) in zip(spans, spans[1:],
                                                                       strict=False):
                if end_a is None or end_a >= start_b:
                    self.error(path_b + ("from",), f"number {dn} on {device} is also held from "
                               f"{start_a} at {path_text(path_a)}; the periods overlap")


def service_numbers_text(value) -> str:
    return ",".join(value) if isinstance(value, list) else value


