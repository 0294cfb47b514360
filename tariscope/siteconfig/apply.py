"""site_config_apply: the service that makes the database hold what the file says."""
from collections import Counter, defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import Device, Node, PhoneNumber, Route, Subscriber, SubscriberGroup
from observers.models import ObserverProfile
from observers.sources.settings import SOURCE_KEYS, plain
from restrictions.models import AuthCode, Limit, PbxControl
from restrictions.services import auth_code_create, auth_code_update, limit_create, limit_update
from scripts.models import ScriptBinding
from tariffs.models import Operator, TariffPlan
from tariffs.services import operator_rates_changed
from tariscope.siteconfig.checks import (
    Known,
    date_or_none,
    observers_of,
    service_numbers_text,
    site_config_validate,
)
from tariscope.siteconfig.schema import (
    DIAL_PLAN_FIELDS,
    KINDS,
    LOG_LEVELS,
    SUBSCRIBER_TYPES,
    SiteConfigError,
    model_default,
)

# --- Apply (the service) --------------------------------------------------------------------

def _known_read() -> Known:
    subscribers = defaultdict(list)
    for name, account in Subscriber.objects.values_list("full_name", "account_number"):
        subscribers[name].append(account)
    return Known(
        operators=frozenset(Operator.objects.values_list("name", flat=True)),
        plans=frozenset(TariffPlan.objects.values_list("name", flat=True)),
        nodes=frozenset(Node.objects.values_list("name", flat=True)),
        devices=frozenset(Device.objects.values_list("name", flat=True)),
        groups={(node, name): parent for node, name, parent in
                SubscriberGroup.objects.values_list("node__name", "name", "parent__name")},
        subscribers={name: tuple(accounts) for name, accounts in subscribers.items()},
        observers=frozenset(ObserverProfile.objects.values_list("name", flat=True)),
        accounts=frozenset(Subscriber.objects.exclude(account_number=None).values_list(
            "account_number", flat=True)),
    )


def site_config_apply(*, data: dict, dry_run: bool = False) -> dict:
    """R1/R2.1/R6: make the database hold what the file says, all or nothing.

    Returns {kind: {"created": n, "updated": n, "unchanged": n}}. Raises SiteConfigError
    with every problem when the file is invalid; then nothing is written. With `dry_run`
    the changes are made and rolled back, so the counts say what a real run would do.
    """
    data = plain(data)
    try:
        with transaction.atomic():
            errors = site_config_validate(data, known=_known_read())
            if errors:
                raise SiteConfigError(errors)
            counts = _Applier(data).run()
            if dry_run:
                transaction.set_rollback(True)
    except IntegrityError as exc:  # a race with another writer; the checks above cover the rest
        raise SiteConfigError([f"(database): the change was refused: {exc}"]) from exc
    return counts


def _or_default(item: dict, key: str, model, name: str | None = None):
    value = item.get(key)
    return model_default(model, name or key) if value is None else value


class _Applier:
    """Writes the rows of a valid file. Matching: operators, plans, nodes, devices and
    observer profiles by name; routes by (device, name); groups by (node, name);
    subscribers by account_number when the file gives it, else by full name; numbers by
    (device, dn, from). Every table is read once up front, so a run that changes nothing
    costs a fixed number of queries."""

    def __init__(self, data: dict):
        self.data = data
        self.counts = {kind: Counter(created=0, updated=0, unchanged=0) for kind in KINDS}
        self.operators = {o.name: o for o in Operator.objects.all()}
        self.plans = {p.name: p for p in TariffPlan.objects.all()}
        self.nodes = {n.name: n for n in Node.objects.all()}
        self.devices = {d.name: d for d in Device.objects.all()}
        self.routes = {(r.device_id, r.name): r for r in Route.objects.all()}
        self.observers = {p.name: p for p in ObserverProfile.objects.all()}
        self.groups = {(g.node_id, g.name): g for g in SubscriberGroup.objects.all()}
        subscribers = list(Subscriber.objects.all())
        self.by_account = {s.account_number: s for s in subscribers if s.account_number}
        self.by_name = {s.full_name: s for s in subscribers}  # used only when unique (checked)
        self.numbers = {(n.device_id, n.dn, n.valid_from): n for n in PhoneNumber.objects.all()}
        self.controls: dict[int, PbxControl] | None = None  # read when the file has one

    def sync(self, kind: str, model, current, values: dict):
        """Create the row, or update the fields that differ; count which it was."""
        if current is None:
            current = model(**values)
            current.save()
            self.counts[kind]["created"] += 1
            return current
        changed = [name for name, value in values.items() if getattr(current, name) != value]
        if changed:
            for name in changed:
                setattr(current, name, values[name])
            current.save(update_fields=changed)
        self.counts[kind]["updated" if changed else "unchanged"] += 1
        return current

    def run(self) -> dict:
        data = self.data
        for item in data.get("operators") or ():
            before = self.operators.get(item["name"])
            old_currency = before.currency if before is not None else None
            operator = self.operators[item["name"]] = self.sync("operators", Operator, before, {
                "name": item["name"],
                "currency": _or_default(item, "currency", Operator),
                "description": _or_default(item, "description", Operator),
            })
            if old_currency is not None and operator.currency != old_currency:
                # The currency is part of every compiled tariff entry (tariffs.selectors).
                operator_rates_changed(operator_ids=[operator.pk])
        for item in data.get("plans") or ():
            self.plans[item["name"]] = self.sync("plans", TariffPlan,
                                                 self.plans.get(item["name"]), {
                "name": item["name"],
                "description": _or_default(item, "description", TariffPlan),
            })
        for item in data.get("nodes") or ():
            self.nodes[item["name"]] = self.sync("nodes", Node, self.nodes.get(item["name"]), {
                "name": item["name"],
                "country": _or_default(item, "country", Node),
                "description": _or_default(item, "description", Node),
            })
        for item in data.get("nodes") or ():
            for device in item.get("devices") or ():
                self.device_apply(self.nodes[item["name"]], device)
        self.groups_apply(data.get("groups") or [])
        for item in data.get("subscribers") or ():
            self.subscriber_apply(item)
        self.scripts_apply(data.get("scripts") or [])
        self.limits_apply(data.get("limits") or [])
        self.auth_codes_apply(data.get("auth_codes") or [])
        return {kind: dict(counts) for kind, counts in self.counts.items()}

    def limits_apply(self, items: list[dict]):
        """R8.1: limits matched by target, unit and call types (limits the file does not
        name are left as they are), through the services the Restrictions pages use."""
        if not items:
            return

        def key(limit_target, unit, call_types):
            return (*limit_target, unit, tuple(sorted(call_types or ())))

        limits = {key((limit.subscriber_id, limit.group_id),
                      "money" if limit.money is not None else "seconds", limit.call_types): limit
                  for limit in Limit.objects.all()}
        for index, item in enumerate(items):
            subscriber = self.by_account[item["subscriber"]] if item.get("subscriber") else None
            group = self.group_by_pk(self.group_id(item)) if item.get("group") else None
            money = Decimal(str(item["money"])) if item.get("money") is not None else None
            values = {
                "money": money, "currency": item.get("currency") or "",
                "seconds": item.get("seconds"), "call_types": sorted(item.get("call_types") or []),
                "warn_percent": item.get("warn_percent"),
                "enabled": _or_default(item, "enabled", Limit),
            }
            target = (subscriber.pk if subscriber else None, group.pk if group else None)
            self.through_services(
                f"limits[{index}]", limits.get(key(
                    target, "money" if money is not None else "seconds", values["call_types"])),
                values, lambda v, s=subscriber, g=group: limit_create(subscriber=s, group=g, **v),
                lambda current, changed: limit_update(limit=current, **changed))

    def through_services(self, path: str, current, values: dict, create, update):
        """Like sync(), through the services the pages use (their checks included): a
        refusal is the file's error at `path`."""
        kind = path.partition("[")[0]
        changed = values if current is None else {
            name: value for name, value in values.items() if getattr(current, name) != value}
        try:
            if current is None:
                create(values)
            elif changed:
                update(current, changed)
        except ValidationError as exc:
            raise SiteConfigError([f"{path}: {message}" for message in exc.messages]) from exc
        self.counts[kind]["created" if current is None else
                          "updated" if changed else "unchanged"] += 1

    def group_by_pk(self, pk: int) -> SubscriberGroup:
        return next(group for group in self.groups.values() if group.pk == pk)

    def auth_codes_apply(self, items: list[dict]):
        """R8.6: authorization codes matched by the code."""
        if not items:
            return
        codes = {code.code: code for code in AuthCode.objects.all()}
        for index, item in enumerate(items):
            values = {"subscriber": self.by_account[item["subscriber"]],
                      "enabled": _or_default(item, "enabled", AuthCode),
                      "description": _or_default(item, "description", AuthCode)}
            self.through_services(
                f"auth_codes[{index}]", codes.get(item["code"]), values,
                lambda v, code=item["code"]: auth_code_create(code=code, **v),
                lambda current, changed: auth_code_update(auth_code=current, **changed))

    def scripts_apply(self, items: list[dict]):
        """R9.1: bindings by (profile, event, script)."""
        bindings = {(b.profile_id, b.event, b.script): b for b in ScriptBinding.objects.all()}
        for item in items:
            profile = self.observers[item["profile"]]
            key = (profile.pk, item["event"], item["script"])
            bindings[key] = self.sync("scripts", ScriptBinding, bindings.get(key), {
                "profile_id": profile.pk, "event": item["event"], "script": item["script"],
                "enabled": _or_default(item, "enabled", ScriptBinding),
                "timeout": float(_or_default(item, "timeout", ScriptBinding)),
                "interval": _or_default(item, "interval", ScriptBinding),
            })

    def pk(self, table: dict, name):
        return table[name].pk if name is not None else None

    def device_apply(self, node: Node, item: dict):
        dial_plan = item.get("dial_plan") or {}
        service_numbers = dial_plan.get("service_numbers")
        values = {
            "node_id": node.pk,
            "name": item["name"],
            "type": item["type"],
            "timezone": _or_default(item, "timezone", Device),
            **{key: _or_default(dial_plan, key, Device) for key in DIAL_PLAN_FIELDS},
            "service_numbers": model_default(Device, "service_numbers") if service_numbers is None
            else service_numbers_text(service_numbers),
            "default_operator_id": self.pk(self.operators, item.get("default_operator")),
            "default_plan_id": self.pk(self.plans, item.get("default_plan")),
        }
        device = self.sync("devices", Device, self.devices.get(item["name"]), values)
        self.devices[device.name] = device
        for route in item.get("routes") or ():
            key = (device.pk, route["name"])
            self.routes[key] = self.sync("routes", Route, self.routes.get(key), {
                "device_id": device.pk,
                "name": route["name"],
                "kind": _or_default(route, "kind", Route),
                "operator_id": self.operators[route["operator"]].pk,
            })
        for _, observer in observers_of(item):
            self.observer_apply(device, observer)
        if item.get("connector") is not None or item.get("call_control") is not None:
            if self.controls is None:
                self.controls = {c.device_id: c for c in PbxControl.objects.all()}
            self.controls[device.pk] = self.sync("pbx_controls", PbxControl,
                                                 self.controls.get(device.pk), {
                "device_id": device.pk,
                "connector": item.get("connector") or {},
                "call_control": item.get("call_control") or {},
            })

    def observer_apply(self, device: Device, item: dict):
        current = self.observers.get(item["name"])
        stored = current.settings if current is not None and isinstance(current.settings,
                                                                         dict) else {}
        # Keys no source takes (written by other means) are kept; the
        # contract's keys are exactly what the file says, so switching a profile to
        # another source drops the old source's credentials.
        settings = {key: value for key, value in stored.items() if key not in SOURCE_KEYS}
        settings.update({key: item[key] for key in SOURCE_KEYS if key in item})
        log_level = item.get("log_level")
        self.observers[item["name"]] = self.sync("observers", ObserverProfile, current, {
            "name": item["name"],
            "device_id": device.pk,
            "source": item["source"],
            "settings": settings,
            "archive_dir": _or_default(item, "archive_dir", ObserverProfile),
            "archive_period": _or_default(item, "archive_period", ObserverProfile),
            "log_level": model_default(ObserverProfile, "log_level") if log_level is None
            else LOG_LEVELS[log_level],
            "remote": _or_default(item, "remote", ObserverProfile),
            "enabled": _or_default(item, "enabled", ObserverProfile),
        })

    def groups_apply(self, items: list[dict]):
        # Parents first: a group whose parent is created by this file waits for it.
        pending = list(items)
        while pending:
            waiting = []
            for item in pending:
                node = self.nodes[item["node"]]
                parent = item.get("parent")
                if parent is not None and (node.pk, parent) not in self.groups:
                    waiting.append(item)
                    continue
                key = (node.pk, item["name"])
                self.groups[key] = self.sync("groups", SubscriberGroup, self.groups.get(key), {
                    "node_id": node.pk,
                    "name": item["name"],
                    "parent_id": self.groups[(node.pk, parent)].pk if parent is not None
                    else None,
                })
            if len(waiting) == len(pending):  # the checks exclude this; never loop forever
                raise SiteConfigError([f"groups: cannot order {len(waiting)} groups by parent"])
            pending = waiting

    def group_id(self, item: dict) -> int | None:
        name = item.get("group")
        if name is None:
            return None
        if item.get("node") is not None:
            return self.groups[(self.nodes[item["node"]].pk, name)].pk
        (group,) = [g for (_, group_name), g in self.groups.items() if group_name == name]
        return group.pk

    def subscriber_apply(self, item: dict):
        account = item.get("account_number")
        current = self.by_account.get(account) if account else self.by_name.get(item["name"])
        kind = item.get("type")
        values = {
            "full_name": item["name"],
            "group_id": self.group_id(item),
            "plan_id": self.pk(self.plans, item.get("plan")),
            "type": model_default(Subscriber, "type") if kind is None
            else SUBSCRIBER_TYPES.get(kind, kind),
            "connection_date": date_or_none(item.get("connection_date")),
            "contract_date": date_or_none(item.get("contract_date")),
            **{key: _or_default(item, key, Subscriber) for key in (
                "contract_number", "personal_code", "edrpou", "tax_code", "bank_code",
                "bank_name", "bank_account", "email")},
        }
        if account:
            values["account_number"] = account
        subscriber = self.sync("subscribers", Subscriber, current, values)
        self.by_account[subscriber.account_number] = subscriber
        for number in item.get("numbers") or ():
            device = self.devices[number["device"]]
            start = date_or_none(number["from"])
            key = (device.pk, number["dn"], start)
            self.numbers[key] = self.sync("numbers", PhoneNumber, self.numbers.get(key), {
                "subscriber_id": subscriber.pk,
                "device_id": device.pk,
                "dn": number["dn"],
                "valid_from": start,
                "valid_to": date_or_none(number.get("to")),
                "description": _or_default(number, "description", PhoneNumber),
            })


