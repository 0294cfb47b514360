"""The site configuration file: apply_config, export_config (tariscope/siteconfig/)."""
import datetime
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Device, Node, PhoneNumber, Route, Subscriber, SubscriberGroup
from observers.models import ObserverProfile
from restrictions.models import AuthCode, Limit, PbxControl
from scripts.models import ScriptBinding
from tariffs.models import Operator, TariffPlan
from tariscope.siteconfig.apply import site_config_apply
from tariscope.siteconfig.checks import Known, site_config_validate
from tariscope.siteconfig.export import site_config_export
from tariscope.siteconfig.files import site_config_parse
from tariscope.siteconfig.schema import SiteConfigError
from tests.factories import (
    DeviceFactory,
    NodeFactory,
    ObserverProfileFactory,
    OperatorFactory,
    PhoneNumberFactory,
    RouteFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffPlanFactory,
)

# The example of the brief, verbatim.
MINIMAL = """\
operators: [{name: Kyivstar, currency: UAH}]
plans: [{name: Basic}]
nodes:
  - name: Kyiv
    devices:
      - name: PBX1
        type: 3cx            # cucm | 3cx | asterisk | freeswitch | radius | generic
        timezone: Europe/Kyiv
        dial_plan: {access_code: "9", national_prefix: "0", international_prefix: "00",
                    country_code: "380", area_code: "44", extension_length: 3}
        default_operator: Kyivstar
        default_plan: Basic
        routes: [{name: "10000", operator: Kyivstar}]
        observer: {name: PBX1, source: folder, path: /var/spool/cdr/pbx1,
                   archive_period: month, log_level: status}
groups: [{name: Sales, node: Kyiv}]
subscribers:
  - {name: Ivan Petrenko, group: Sales, plan: Basic,
     numbers: [{dn: "101", device: PBX1, from: 2024-01-01}]}
"""
MODELS = (Operator, TariffPlan, Node, Device, Route, ObserverProfile, SubscriberGroup,
          Subscriber, PhoneNumber)
KINDS = ("operators", "plans", "nodes", "devices", "routes", "observers", "groups",
         "subscribers", "numbers")


def minimal() -> dict:
    """The minimal example as YAML gives it (dates as date objects)."""
    return yaml.safe_load(MINIMAL)


def all_unchanged(counts: dict) -> bool:
    return all(c["created"] == 0 and c["updated"] == 0 for c in counts.values())


def rows() -> dict:
    """Every configuration row with every column, keyed by table."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def natural_rows() -> dict:
    """The configuration without ids: what must survive an export into another database."""
    def listed(queryset, *fields):
        return sorted((list(row) for row in queryset.values_list(*fields)), key=repr)

    return {
        "operators": listed(Operator.objects, "name", "currency", "description"),
        "plans": listed(TariffPlan.objects, "name", "description"),
        "nodes": listed(Node.objects, "name", "country", "description"),
        "devices": listed(Device.objects, "node__name", "name", "type", "timezone",
                          "access_code", "national_prefix", "international_prefix",
                          "country_code", "area_code", "extension_length", "extension_pattern",
                          "service_numbers", "default_operator__name", "default_plan__name"),
        "routes": listed(Route.objects, "device__name", "name", "kind", "operator__name"),
        "observers": sorted(
            [p.name, p.device.name, p.source, json.dumps(p.settings, sort_keys=True),
             p.archive_dir, p.archive_period, p.log_level, p.remote, p.enabled]
            for p in ObserverProfile.objects.select_related("device")),
        "groups": listed(SubscriberGroup.objects, "node__name", "name", "parent__name"),
        "subscribers": listed(
            Subscriber.objects, "full_name", "group__node__name", "group__name", "plan__name",
            "type", "connection_date", "contract_number", "contract_date", "account_number",
            "personal_code", "edrpou", "tax_code", "bank_code", "bank_name", "bank_account",
            "email"),
        "numbers": listed(PhoneNumber.objects, "subscriber__account_number", "device__name",
                          "dn", "valid_from", "valid_to", "description"),
        "scripts": listed(ScriptBinding.objects, "profile__name", "event", "script", "enabled",
                          "timeout", "interval"),
        "pbx_controls": sorted(
            [c.device.name, json.dumps(c.connector, sort_keys=True),
             json.dumps(c.call_control, sort_keys=True)]
            for c in PbxControl.objects.select_related("device")),
        "limits": sorted(
            ([lim.subscriber.account_number if lim.subscriber else None,
              [lim.group.node.name, lim.group.name] if lim.group else None, str(lim.money),
              lim.currency, lim.seconds, lim.call_types, lim.warn_percent, lim.enabled]
             for lim in Limit.objects.select_related("subscriber", "group__node")), key=repr),
        "auth_codes": listed(AuthCode.objects, "code", "subscriber__account_number", "enabled",
                             "description"),
    }


def empty_the_configuration():
    for model in (AuthCode, Limit, PbxControl, PhoneNumber, Subscriber, SubscriberGroup,
                  ObserverProfile, Route, Device, Node, Operator, TariffPlan):
        model.objects.all().delete()


def errors_of(data) -> list[str]:
    with pytest.raises(SiteConfigError) as caught:
        site_config_apply(data=data)
    return caught.value.errors


def rich_site():
    """A site using every part of the format, with values off their defaults."""
    kyivstar = OperatorFactory(name="Kyivstar", description="Main carrier")
    vodafone = OperatorFactory(name="Vodafone", currency="EUR")
    basic = TariffPlanFactory(name="Basic", description="Staff")
    vip = TariffPlanFactory(name="VIP")
    kyiv = NodeFactory(name="Kyiv", country="UA", description="Head office")
    lviv = NodeFactory(name="Lviv", country="")
    pbx1 = DeviceFactory(node=kyiv, name="PBX1", default_operator=kyivstar, default_plan=basic,
                         extension_pattern=r"^1\d\d$", service_numbers="112,911")
    gateway = DeviceFactory(node=lviv, name="GW", type="radius", timezone="UTC",
                            national_prefix="", access_code="", extension_length=None,
                            default_operator=None, default_plan=None, service_numbers="")
    RouteFactory(device=pbx1, name="10000", operator=kyivstar)
    RouteFactory(device=pbx1, name="GW1", kind="gateway", operator=vodafone)
    ObserverProfileFactory(name="PBX1", device=pbx1, source="folder", log_level=3,
                           archive_period="day",
                           settings={"path": "/var/spool/cdr/pbx1"})
    ObserverProfileFactory(name="PBX1ftp", device=pbx1, source="ftp_client", enabled=False,
                           remote=True, archive_dir="/srv/archive/ftp",
                           settings={"host": "pbx1.example", "user": "cdr", "password": "pw",
                                     "after": "rename"})
    radius = ObserverProfileFactory(name="Radius", device=gateway, source="radius",
                                    settings={"secret": "s3", "port": 1813,
                                              "clients": [{"address": "10.0.0.1",
                                                           "secret": "c"}]})
    ScriptBinding.objects.create(profile=radius, event="call_processed", script="fraud")
    ScriptBinding.objects.create(profile=radius, event="periodic", script="report.py",
                                 enabled=False, timeout=30, interval=3600)
    office = SubscriberGroupFactory(node=kyiv, name="Office")
    sales = SubscriberGroupFactory(node=kyiv, name="Sales", parent=office)
    lviv_sales = SubscriberGroupFactory(node=lviv, name="Sales")
    ivan = SubscriberFactory(full_name="Ivan Petrenko", group=sales, plan=vip, type=1,
                             connection_date=datetime.date(2024, 1, 2), contract_number="C-1",
                             contract_date=datetime.date(2023, 12, 20), account_number="A-1",
                             edrpou="12345678", bank_name="PrivatBank", email="ivan@example.com")
    olha = SubscriberFactory(full_name="Olha Shevchenko", group=lviv_sales)
    SubscriberFactory(full_name="Olha Shevchenko", group=None)  # a namesake, told apart by account
    PhoneNumberFactory(subscriber=ivan, device=pbx1, dn="101", valid_from=datetime.date(2023, 1, 1),
                       valid_to=datetime.date(2023, 12, 31), description="old desk")
    PhoneNumberFactory(subscriber=ivan, device=pbx1, dn="102", valid_from=datetime.date(2024, 1, 1))
    PhoneNumberFactory(subscriber=olha, device=gateway, dn="0441234567",
                       valid_from=datetime.date(2024, 1, 1))
    PbxControl.objects.create(device=pbx1, connector={
        "type": "3cx-v20", "url": "https://pbx1.example:5001", "client_id": "tariscope",
        "client_secret": "s", "close_by": "group", "closed_group": "No outbound"},
        call_control={"max_call_cost": "25.00", "blocked_destinations": ["882"]})
    Limit.objects.create(subscriber=ivan, money=Decimal("500.00"), currency="UAH", warn_percent=80)
    Limit.objects.create(group=sales, seconds=36000, call_types=[5, 6], enabled=False)
    AuthCode.objects.create(code="4711", subscriber=ivan, description="Ivan's code")


# --- Applying ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_minimal_example_creates_every_object():
    # given an empty database and the minimal example
    data = minimal()

    # when it is applied
    counts = site_config_apply(data=data)

    # then one of each kind is created, with the values of the file (it binds no script)
    assert counts == {**{kind: {"created": 1, "updated": 0, "unchanged": 0} for kind in KINDS},
                      **dict.fromkeys(("scripts", "pbx_controls", "limits", "auth_codes"),
                                      {"created": 0, "updated": 0, "unchanged": 0})}
    device = Device.objects.get(name="PBX1")
    assert (device.node.name, device.type, device.timezone) == ("Kyiv", "3cx", "Europe/Kyiv")
    assert (device.access_code, device.national_prefix, device.international_prefix,
            device.country_code, device.area_code, device.extension_length) == (
        "9", "0", "00", "380", "44", 3)
    assert (device.default_operator.name, device.default_plan.name) == ("Kyivstar", "Basic")
    assert Route.objects.get().operator.name == "Kyivstar"
    profile = ObserverProfile.objects.get()
    assert (profile.name, profile.device, profile.source) == ("PBX1", device, "folder")
    assert profile.settings == {"path": "/var/spool/cdr/pbx1"}
    assert (profile.archive_period, profile.log_level, profile.enabled, profile.remote) == (
        "month", 0, True, False)
    subscriber = Subscriber.objects.get()
    assert (subscriber.full_name, subscriber.group.name, subscriber.plan.name) == (
        "Ivan Petrenko", "Sales", "Basic")
    number = PhoneNumber.objects.get()
    assert (number.subscriber, number.device, number.dn, number.valid_from, number.valid_to) == (
        subscriber, device, "101", datetime.date(2024, 1, 1), None)


@pytest.mark.django_db
def test_applying_the_same_file_twice_changes_nothing():
    # given the minimal example applied once
    site_config_apply(data=minimal())
    before = rows()

    # when it is applied again
    counts = site_config_apply(data=minimal())

    # then everything is reported unchanged and no row's values changed
    assert counts == {**{kind: {"created": 0, "updated": 0, "unchanged": 1} for kind in KINDS},
                      **dict.fromkeys(("scripts", "pbx_controls", "limits", "auth_codes"),
                                      {"created": 0, "updated": 0, "unchanged": 0})}
    assert rows() == before


@pytest.mark.django_db
def test_unchanged_run_costs_the_same_queries_however_many_rows(django_assert_max_num_queries):
    # given a file of 30 subscribers with a number each, applied once
    data = minimal()
    data["subscribers"] = [
        {"name": f"Subscriber {i}", "group": "Sales",
         "numbers": [{"dn": str(200 + i), "device": "PBX1", "from": "2024-01-01"}]}
        for i in range(30)]
    site_config_apply(data=data)

    # when it is applied again, then the tables are read once each and nothing is written
    with django_assert_max_num_queries(20):
        counts = site_config_apply(data=data)
    assert all_unchanged(counts)


@pytest.mark.django_db
def test_changed_value_updates_only_that_row():
    # given the minimal example applied
    site_config_apply(data=minimal())
    device_before = Device.objects.values().get()

    # when the file changes the observer's log level and a subscriber's plan is dropped
    data = minimal()
    data["nodes"][0]["devices"][0]["observer"]["log_level"] = "debug"
    del data["subscribers"][0]["plan"]
    counts = site_config_apply(data=data)

    # then those two rows are updated, the rest unchanged
    assert counts["observers"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert counts["subscribers"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert counts["devices"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert ObserverProfile.objects.get().log_level == 4
    assert Subscriber.objects.get().plan is None  # a key left out takes its default
    assert Device.objects.values().get() == device_before


@pytest.mark.django_db
def test_rows_not_in_the_file_are_kept():
    # given rows the file does not mention, including a route of a listed device
    site_config_apply(data=minimal())
    other = OperatorFactory(name="Other")
    RouteFactory(device=Device.objects.get(name="PBX1"), name="20000", operator=other)
    stranger = SubscriberFactory(full_name="Not In File")

    # when the file is applied again
    counts = site_config_apply(data=minimal())

    # then nothing was deleted
    assert all_unchanged(counts)
    assert Route.objects.filter(name="20000").exists()
    assert Subscriber.objects.filter(pk=stranger.pk).exists()
    assert Operator.objects.filter(name="Other").exists()


@pytest.mark.django_db
def test_references_may_name_rows_only_in_the_database():
    # given an operator, plan, node, group and device that exist only in the database
    device = DeviceFactory(name="Old", node=NodeFactory(name="Lviv"))
    OperatorFactory(name="Lifecell")
    TariffPlanFactory(name="Gold")
    SubscriberGroupFactory(node=device.node, name="Support")
    data = {
        "nodes": [{"name": "Kyiv", "devices": [{"name": "PBX9", "type": "asterisk",
                                                "default_operator": "Lifecell",
                                                "default_plan": "Gold"}]}],
        "groups": [{"name": "Desk", "node": "Lviv", "parent": "Support"}],
        "subscribers": [{"name": "Petro", "group": "Desk", "plan": "Gold",
                         "numbers": [{"dn": "300", "device": "Old", "from": "2024-05-01"}]}],
    }

    # when a file refers to them without listing them
    site_config_apply(data=data)

    # then the references resolve to those rows
    assert Device.objects.get(name="PBX9").default_operator.name == "Lifecell"
    assert SubscriberGroup.objects.get(name="Desk").parent.name == "Support"
    assert PhoneNumber.objects.get(dn="300").device == device


@pytest.mark.django_db
def test_subscriber_with_account_number_is_matched_by_it_and_renamed():
    # given a subscriber with an account number
    SubscriberFactory(full_name="Ivan Petrenko", account_number="A-7")

    # when the file names that account number under another name
    counts = site_config_apply(data={"subscribers": [{"name": "Ivan Petrenko-Koval",
                                                      "account_number": "A-7"}]})

    # then the same row is renamed rather than a second one created
    assert counts["subscribers"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert list(Subscriber.objects.values_list("full_name", "account_number")) == [
        ("Ivan Petrenko-Koval", "A-7")]


@pytest.mark.django_db
def test_subscriber_without_account_number_is_matched_by_name_and_keeps_its_number():
    # given a subscriber whose account number was generated
    subscriber = SubscriberFactory(full_name="Ivan Petrenko", group=None)
    generated = subscriber.account_number

    # when the file lists the name without an account number
    counts = site_config_apply(data={"subscribers": [{"name": "Ivan Petrenko"}]})

    # then that subscriber is the one matched, and its account number stays
    assert counts["subscribers"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert Subscriber.objects.get().account_number == generated


@pytest.mark.django_db
def test_subscriber_name_shared_by_two_database_rows_needs_an_account_number():
    # given two subscribers of the same name
    SubscriberFactory(full_name="Ivan Petrenko")
    SubscriberFactory(full_name="Ivan Petrenko")

    # when the file names one without an account number, then it is rejected with the path
    assert errors_of({"subscribers": [{"name": "Ivan Petrenko"}]}) == [
        "subscribers[0].name: 2 subscribers in the database are named 'Ivan Petrenko'; "
        "give account_number to say which"]


@pytest.mark.django_db
def test_group_name_on_two_nodes_needs_the_node():
    # given groups named Sales on two nodes
    SubscriberGroupFactory(node=NodeFactory(name="Kyiv"), name="Sales")
    SubscriberGroupFactory(node=NodeFactory(name="Lviv"), name="Sales")

    # when a subscriber names Sales alone, then the file is rejected
    assert errors_of({"subscribers": [{"name": "Ivan", "group": "Sales"}]}) == [
        "subscribers[0].group: group 'Sales' exists on nodes Kyiv, Lviv; add node to say which"]

    # and when the node is added, the subscriber lands in that node's group
    site_config_apply(data={"subscribers": [{"name": "Ivan", "group": "Sales", "node": "Lviv"}]})
    assert Subscriber.objects.get(full_name="Ivan").group.node.name == "Lviv"


@pytest.mark.django_db
def test_groups_are_created_parents_first_whatever_the_order():
    # given a file listing a child group before its parent
    data = {"nodes": [{"name": "Kyiv"}],
            "groups": [{"name": "Sales", "node": "Kyiv", "parent": "Office"},
                       {"name": "Office", "node": "Kyiv"}]}

    # when it is applied
    site_config_apply(data=data)

    # then the child hangs under the parent
    assert SubscriberGroup.objects.get(name="Sales").parent.name == "Office"


@pytest.mark.django_db
def test_observer_settings_keep_keys_outside_the_contract_and_drop_old_source_keys():
    # given an FTP client profile that also has a key the file format does not know
    ObserverProfileFactory(name="PBX1", device=DeviceFactory(name="PBX1"), source="ftp_client",
                           settings={"host": "h", "user": "u", "password": "p",
                                     "site_note": "rack 5"})
    data = minimal()

    # when the file turns it into a folder profile
    site_config_apply(data=data)

    # then the FTP credentials are gone and the foreign key is kept
    assert ObserverProfile.objects.get().settings == {"path": "/var/spool/cdr/pbx1",
                                                      "site_note": "rack 5"}
    assert all_unchanged(site_config_apply(data=data))


@pytest.mark.django_db
def test_dry_run_counts_changes_but_writes_nothing():
    # given an empty database
    # when the minimal example is applied as a dry run
    counts = site_config_apply(data=minimal(), dry_run=True)

    # then the counts say what would be created and nothing was
    assert counts["devices"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert not Device.objects.exists()


# --- Errors ------------------------------------------------------------------------------------

def _observer(data):
    return data["nodes"][0]["devices"][0]["observer"]


def bad_port(data):
    _observer(data).update(source="tcp_server", port=70000)
    del _observer(data)["path"]


def bad_source(data):
    _observer(data)["source"] = "ftp"


def ftp_client_without_host(data):
    observer = _observer(data)
    del observer["path"]
    observer.update(source="ftp_client", user="cdr", password="x")


def radius_without_secret(data):
    observer = _observer(data)
    del observer["path"]
    observer["source"] = "radius"


def key_of_another_source(data):
    _observer(data)["host"] = "pbx.example"


def unknown_key(data):
    data["nodes"][0]["devices"][0]["timezon"] = "UTC"


def bad_observer_name(data):
    _observer(data)["name"] = "PBX-1"


def bad_timezone(data):
    data["nodes"][0]["devices"][0]["timezone"] = "Europe/Kiyv"


def bad_date(data):
    data["subscribers"][0]["numbers"][0]["from"] = "2024-02-30"


def to_before_from(data):
    data["subscribers"][0]["numbers"][0]["to"] = "2023-12-31"


def unknown_operator(data):
    data["nodes"][0]["devices"][0]["default_operator"] = "Vodafone"


def unknown_route_operator(data):
    data["nodes"][0]["devices"][0]["routes"][0]["operator"] = "Vodafone"


def unknown_group_node(data):
    data["groups"][0]["node"] = "Lviv"


def unknown_group(data):
    data["subscribers"][0]["group"] = "Support"


def unknown_plan(data):
    data["subscribers"][0]["plan"] = "Gold"


def unknown_device(data):
    data["subscribers"][0]["numbers"][0]["device"] = "PBX9"


def bad_device_type(data):
    data["nodes"][0]["devices"][0]["type"] = "avaya"


def unquoted_digits(data):
    data["nodes"][0]["devices"][0]["dial_plan"]["access_code"] = 9


def duplicate_plan(data):
    data["plans"].append({"name": "Basic"})


def duplicate_device(data):
    data["nodes"].append({"name": "Lviv", "devices": [{"name": "PBX1", "type": "cucm"}]})


def overlapping_numbers(data):
    data["subscribers"].append({"name": "Olha", "numbers": [
        {"dn": "101", "device": "PBX1", "from": "2024-06-01"}]})


def group_cycle(data):
    data["groups"] = [{"name": "A", "node": "Kyiv", "parent": "B"},
                      {"name": "B", "node": "Kyiv", "parent": "A"}]
    data["subscribers"][0]["group"] = "A"


@pytest.mark.django_db
@pytest.mark.parametrize(("break_it", "expected"), [
    (bad_port, "nodes[0].devices[0].observer.port: 70000 is greater than the maximum of 65535"),
    (bad_source, "nodes[0].devices[0].observer.source: 'ftp' is not one of 'folder', "
                 "'ftp_server', 'ftp_client', 'tcp_server', 'tcp_client', 'radius'"),
    (ftp_client_without_host,
     "nodes[0].devices[0].observer.host: is required for source 'ftp_client'"),
    (radius_without_secret,
     "nodes[0].devices[0].observer.secret: is required for source 'radius'"),
    (key_of_another_source, "nodes[0].devices[0].observer.host: not a key of source 'folder' "
                            "(it takes path, settle_seconds, parser)"),
    (unknown_key, "nodes[0].devices[0].timezon: unknown key (did you mean 'timezone'?)"),
    (bad_observer_name,
     "nodes[0].devices[0].observer.name: 'PBX-1' is not valid: letters and digits only"),
    (bad_timezone, "nodes[0].devices[0].timezone: unknown time zone 'Europe/Kiyv'"),
    (bad_date, "subscribers[0].numbers[0].from: '2024-02-30' is not a date (YYYY-MM-DD)"),
    (to_before_from, "subscribers[0].numbers[0].to: 2023-12-31 is before from (2024-01-01)"),
    (unknown_operator, "nodes[0].devices[0].default_operator: unknown operator 'Vodafone' "
                       "(neither in the file nor in the database)"),
    (unknown_route_operator, "nodes[0].devices[0].routes[0].operator: unknown operator "
                             "'Vodafone' (neither in the file nor in the database)"),
    (unknown_group_node,
     "groups[0].node: unknown node 'Lviv' (neither in the file nor in the database)"),
    (unknown_group,
     "subscribers[0].group: unknown group 'Support' (neither in the file nor in the database)"),
    (unknown_plan,
     "subscribers[0].plan: unknown tariff plan 'Gold' (neither in the file nor in the database)"),
    (unknown_device, "subscribers[0].numbers[0].device: unknown device 'PBX9' "
                     "(neither in the file nor in the database)"),
    (bad_device_type, "nodes[0].devices[0].type: 'avaya' is not one of 'cucm', '3cx', "
                      "'asterisk', 'freeswitch', 'radius', 'generic'"),
    (unquoted_digits, "nodes[0].devices[0].dial_plan.access_code: expected text, got 9 "
                      "(write it in quotes)"),
    (duplicate_plan, "plans[1].name: duplicate plan name (first at plans[0].name)"),
    (duplicate_device, "nodes[1].devices[0].name: duplicate device name "
                       "(first at nodes[0].devices[0].name)"),
    (overlapping_numbers, "subscribers[1].numbers[0].from: number 101 on PBX1 is also held "
                          "from 2024-01-01 at subscribers[0].numbers[0]; the periods overlap"),
    (group_cycle, "groups[0].parent: groups form a cycle: A -> B -> A"),
], ids=lambda value: value.__name__ if callable(value) else "")
def test_invalid_file_is_rejected_with_the_path_of_the_bad_key(break_it, expected):
    # given the minimal example with one mistake
    data = minimal()
    break_it(data)

    # when it is applied, then the error names the path of the bad key
    assert expected in errors_of(data)


@pytest.mark.django_db
def test_every_error_of_a_file_is_reported_at_once():
    # given a file with mistakes in different places
    data = minimal()
    for break_it in (bad_port, unknown_key, bad_timezone, bad_date, unknown_plan):
        break_it(data)

    # when it is applied
    errors = errors_of(data)

    # then each is reported, in the order of the file
    assert errors == [
        "nodes[0].devices[0].observer.port: 70000 is greater than the maximum of 65535",
        "nodes[0].devices[0].timezon: unknown key (did you mean 'timezone'?)",
        "nodes[0].devices[0].timezone: unknown time zone 'Europe/Kiyv'",
        "subscribers[0].numbers[0].from: '2024-02-30' is not a date (YYYY-MM-DD)",
        "subscribers[0].plan: unknown tariff plan 'Gold' (neither in the file nor in the database)",
    ]


@pytest.mark.django_db
def test_invalid_file_changes_nothing():
    # given a configured database
    site_config_apply(data=minimal())
    before = rows()

    # when a file that would change and add rows but has one bad key is applied
    data = minimal()
    data["operators"].append({"name": "Vodafone", "currency": "EUR"})
    data["nodes"][0]["devices"][0]["timezone"] = "UTC"
    data["subscribers"].append({"name": "Olha", "numbers": [
        {"dn": "102", "device": "PBX1", "from": "2024-13-01"}]})
    with pytest.raises(SiteConfigError):
        site_config_apply(data=data)

    # then the database is as it was
    assert rows() == before


def test_validation_needs_no_database():
    # given the minimal example, and a snapshot of what the database would hold
    data = minimal()
    del data["operators"]

    # when it is validated without a database (this test has no database access)
    alone = site_config_validate(data)
    with_known = site_config_validate(data, known=Known(operators=frozenset({"Kyivstar"})))

    # then references resolve against the snapshot
    assert alone == [
        "nodes[0].devices[0].default_operator: unknown operator 'Kyivstar' "
        "(neither in the file nor in the database)",
        "nodes[0].devices[0].routes[0].operator: unknown operator 'Kyivstar' "
        "(neither in the file nor in the database)",
    ]
    assert with_known == []


@pytest.mark.parametrize(("text", "expected"), [
    ("plans: [{name: Basic}\n", "input: not valid YAML: expected ',' or ']', but got '<stream end>' "
                                "at line 2 column 1"),
    ("plans:\n  - name: A\n    name: B\n", "input: not valid YAML: duplicate key 'name' "
                                            "at line 3 column 5"),
    ("", "input: the file is empty"),
])
def test_unparseable_text_is_a_clear_error(text, expected):
    # given text that is not a YAML mapping, when it is parsed, then the error says why
    with pytest.raises(SiteConfigError) as caught:
        site_config_parse(text, fmt="yaml")
    assert caught.value.errors == [expected]


def test_yaml_keeps_dates_as_text_and_reads_only_true_false_as_booleans():
    # given YAML with a date, a Norwegian node and a boolean
    text = "nodes: [{name: Oslo, country: NO}]\nx: {from: 2024-01-01, enabled: false}\n"

    # when it is parsed
    data = site_config_parse(text, fmt="yaml")

    # then the date and the country stay text
    assert data == {"nodes": [{"name": "Oslo", "country": "NO"}],
                    "x": {"from": "2024-01-01", "enabled": False}}


# The restrictions' keys, as issue 15 pins them (the example of docs/restrictions.md).
RESTRICTIONS = """\
nodes:
  - name: Kyiv
    devices:
      - name: PBX1
        type: 3cx
        connector: {type: 3cx-v20, url: "https://pbx.example.com:5001", client_id: tariscope,
                    client_secret: "...", close_by: group, closed_group: "No outbound",
                    poll_seconds: 2, sync_minutes: 60}
        call_control: {max_call_cost: "25.00", max_call_seconds: 3600, min_balance: "0.00",
                       require_auth_code: false, blocked_destinations: ["882", "979", "53"]}
groups: [{name: Sales, node: Kyiv}]
subscribers:
  - {name: Ivan Petrenko, group: Sales, account_number: "1001"}
limits:
  - {subscriber: "1001", money: "500.00", currency: UAH, warn_percent: 80}
  - {group: Sales, node: Kyiv, seconds: 36000, call_types: [5, 6]}
auth_codes:
  - {code: "4711", subscriber: "1001"}
"""


@pytest.mark.django_db
def test_the_restrictions_keys_make_the_pbx_control_limits_and_codes():
    # when the example is applied, then applied again
    first = site_config_apply(data=yaml.safe_load(RESTRICTIONS))
    again = site_config_apply(data=yaml.safe_load(RESTRICTIONS))
    # then the device's control, both limits and the code exist, and the second run changed
    # nothing
    assert {kind: first[kind]["created"] for kind in ("pbx_controls", "limits", "auth_codes")} == {
        "pbx_controls": 1, "limits": 2, "auth_codes": 1}
    assert all_unchanged(again)
    control = PbxControl.objects.get(device__name="PBX1")
    assert control.connector["closed_group"] == "No outbound"
    assert control.call_control["blocked_destinations"] == ["882", "979", "53"]
    money = Limit.objects.get(subscriber__account_number="1001")
    assert (money.money, money.currency, money.warn_percent) == (Decimal("500.00"), "UAH", 80)
    seconds = Limit.objects.get(group__name="Sales")
    assert (seconds.seconds, seconds.call_types, seconds.money) == (36000, [5, 6], None)
    assert AuthCode.objects.get().subscriber.account_number == "1001"
    # and a changed amount updates the limit in place
    changed = yaml.safe_load(RESTRICTIONS)
    changed["limits"][0]["money"] = "600.00"
    counts = site_config_apply(data=changed)
    assert counts["limits"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert Limit.objects.get(subscriber__account_number="1001").money == Decimal("600.00")


@pytest.mark.django_db
def test_bad_restrictions_keys_are_each_reported_and_nothing_is_written():
    # given the example spoiled in every restrictions key
    data = yaml.safe_load(RESTRICTIONS)
    device = data["nodes"][0]["devices"][0]
    device["connector"]["close_by"] = "unplug"
    device["call_control"]["max_call_seconds"] = -5
    data["limits"] += [{"subscriber": "9999", "money": "1.005", "currency": "UAH"},
                       {"subscriber": "1001", "group": "Sales", "seconds": 60},
                       {"subscriber": "1001", "money": "5"},
                       {"group": "Nowhere", "seconds": 60}]
    data["auth_codes"].append({"code": "4711", "subscriber": "1001"})
    # when it is applied
    errors = errors_of(data)
    # then each problem is named at its key, and nothing was written
    text = "\n".join(errors)
    for expected in ("nodes[0].devices[0].connector:", "close_by",
                     "nodes[0].devices[0].call_control:", "max_call_seconds",
                     "limits[2].subscriber: unknown subscriber account number '9999'",
                     "limits[2].money: 1.005 has more than two decimal places",
                     "limits[3]: give either subscriber (an account number) or group",
                     "limits[4].currency: a limit in money needs its currency",
                     "limits[5].group: unknown group 'Nowhere'",
                     "auth_codes[1].code: duplicate authorization code"):
        assert expected in text, expected
    assert not PbxControl.objects.exists() and not Limit.objects.exists()
    assert not Subscriber.objects.exists()


# --- Export --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_export_applied_to_its_own_database_changes_nothing():
    # given a site using every part of the format
    rich_site()
    before = rows()

    # when its export is applied back
    counts = site_config_apply(data=site_config_export())

    # then nothing changes
    assert all_unchanged(counts)
    assert rows() == before


@pytest.mark.django_db
def test_export_applied_to_an_empty_database_reproduces_the_configuration():
    # given the export of a site using every part of the format, passed through YAML
    rich_site()
    original = natural_rows()
    exported = site_config_export()
    text = yaml.safe_dump(exported, sort_keys=False)

    # when the configuration is removed and the export applied
    empty_the_configuration()
    counts = site_config_apply(data=site_config_parse(text, fmt="yaml"))

    # then the same configuration is back, and it exports the same
    assert all(c["updated"] == 0 and c["unchanged"] == 0 for c in counts.values())
    assert natural_rows() == original
    assert site_config_export() == exported


@pytest.mark.django_db
def test_export_leaves_out_defaults_and_writes_dates_as_text():
    # given the minimal example applied
    site_config_apply(data=minimal())

    # when it is exported
    exported = site_config_export()

    # then defaults are left out, dates are ISO text and subscribers carry their account number
    device = exported["nodes"][0]["devices"][0]
    assert device["dial_plan"] == {"access_code": "9", "country_code": "380",
                                   "area_code": "44", "extension_length": 3}
    assert device["observer"] == {"name": "PBX1", "source": "folder",
                                  "path": "/var/spool/cdr/pbx1"}
    subscriber = exported["subscribers"][0]
    assert subscriber["numbers"] == [{"dn": "101", "device": "PBX1", "from": "2024-01-01"}]
    assert subscriber["account_number"] == Subscriber.objects.get().account_number


# --- Commands ------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("name", "as_json"), [
    ("site.yaml", False), ("site.yml", False), ("site.json", True),
    ("site.conf", False), ("site.txt", True),
])
def test_apply_config_reads_yaml_and_json(tmp_path, capsys, name, as_json):
    # given the minimal example as YAML or JSON (told by content when the name says neither)
    path = tmp_path / name
    path.write_text(json.dumps(minimal(), default=str) if as_json else MINIMAL)

    # when the command applies it
    call_command("apply_config", str(path))

    # then it prints a one-line JSON summary and the rows exist
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out)["devices"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert Device.objects.filter(name="PBX1").exists()


@pytest.mark.django_db
def test_apply_config_fails_with_every_error_on_a_line_of_its_own(tmp_path):
    # given a file with two mistakes
    data = minimal()
    bad_port(data)
    bad_date(data)
    path = tmp_path / "site.json"
    path.write_text(json.dumps(data, default=str))

    # when the command applies it, then it fails listing both, and nothing was written
    with pytest.raises(CommandError) as caught:
        call_command("apply_config", str(path))
    assert str(caught.value).splitlines() == [
        f"{path}: not applied, 2 error(s):",
        "nodes[0].devices[0].observer.port: 70000 is greater than the maximum of 65535",
        "subscribers[0].numbers[0].from: '2024-02-30' is not a date (YYYY-MM-DD)",
    ]
    assert caught.value.returncode == 1
    assert not Operator.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "text", "expected"), [
    ("missing.yaml", None, "missing.yaml: no such file"),
    ("broken.json", '{"plans": [', "broken.json: not valid JSON: Expecting value "
                                   "at line 1 column 12"),
    ("broken.yaml", "plans: [", "broken.yaml: not valid YAML:"),
    ("list.yaml", "- plans", "(top level): expected a mapping, got a list"),
])
def test_apply_config_reports_a_missing_or_unparseable_file(tmp_path, name, text, expected):
    # given a missing, broken or wrongly shaped file
    path = tmp_path / name
    if text is not None:
        path.write_text(text)

    # when the command applies it, then the error says what is wrong
    with pytest.raises(CommandError) as caught:
        call_command("apply_config", str(path))
    assert expected in str(caught.value)


@pytest.mark.django_db
def test_export_config_writes_yaml_to_stdout_that_apply_config_accepts(tmp_path, capsys):
    # given a configured database
    site_config_apply(data=minimal())

    # when the configuration is exported to stdout and the output applied
    call_command("export_config")
    text = capsys.readouterr().out
    path = tmp_path / "export.yaml"
    path.write_text(text)
    call_command("apply_config", str(path))

    # then it was YAML and applying it changed nothing
    assert yaml.safe_load(text)["plans"] == [{"name": "Basic"}]
    assert all_unchanged(json.loads(capsys.readouterr().out))


@pytest.mark.django_db
def test_export_config_writes_json_to_a_file_readable_by_its_owner_only(tmp_path):
    # given a configured database
    site_config_apply(data=minimal())
    path = tmp_path / "site.json"

    # when it is exported to a .json file
    call_command("export_config", "--output", str(path))

    # then the file is JSON, and private (it may hold passwords)
    assert json.loads(path.read_text())["operators"] == [{"name": "Kyivstar", "currency": "UAH"}]
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.django_db
def test_documented_example_applies():
    # given the example of docs/config.md's site configuration section
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    section = doc.split("## Site configuration file (apply_config)", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)

    # when it is applied twice
    first = site_config_apply(data=site_config_parse(example, fmt="yaml"))
    second = site_config_apply(data=site_config_parse(example, fmt="yaml"))

    # then it creates rows and is idempotent
    assert first["subscribers"]["created"] == 1
    assert all_unchanged(second)


def test_minimal_example_is_valid_as_given():
    # given the brief's example, when validated alone, then it has no errors
    assert site_config_validate(minimal()) == []


# --- Script bindings (R9.1) ----------------------------------------------------------------

@pytest.mark.django_db
def test_a_scripts_list_binds_scripts_to_profiles_and_applies_again_unchanged():
    # given the minimal example with two bindings of its profile
    data = minimal()
    data["scripts"] = [{"profile": "PBX1", "event": "call_processed", "script": "fraud"},
                       {"profile": "PBX1", "event": "periodic", "script": "tick.py",
                        "interval": 600, "timeout": 2.5, "enabled": False}]
    # when it is applied, twice
    first = site_config_apply(data=data)
    second = site_config_apply(data=data)
    # then both bindings exist with the file's values, and the second run changes nothing
    assert first["scripts"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert second["scripts"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert sorted(ScriptBinding.objects.values_list(
        "profile__name", "event", "script", "enabled", "timeout", "interval")) == [
        ("PBX1", "call_processed", "fraud", True, 10.0, 0),
        ("PBX1", "periodic", "tick.py", False, 2.5, 600)]
    # and the export lists them, defaults left out
    assert site_config_export()["scripts"] == [
        {"profile": "PBX1", "event": "call_processed", "script": "fraud"},
        {"profile": "PBX1", "event": "periodic", "script": "tick.py", "enabled": False,
         "timeout": 2.5, "interval": 600}]


@pytest.mark.django_db
def test_bad_bindings_are_refused_each_with_its_path():
    # given bindings to an unknown profile, an unknown event, the same binding twice, and a
    # periodic one without an interval
    data = minimal()
    data["scripts"] = [{"profile": "Nobody", "event": "call_processed", "script": "fraud"},
                       {"profile": "PBX1", "event": "call_made", "script": "fraud"},
                       {"profile": "PBX1", "event": "call_processed", "script": "fraud"},
                       {"profile": "PBX1", "event": "call_processed", "script": "fraud"},
                       {"profile": "PBX1", "event": "periodic", "script": "tick.py"}]
    # when it is applied, then every problem is named and nothing is written
    errors = errors_of(data)
    assert any(e.startswith("scripts[0].profile: unknown observer profile 'Nobody'")
               for e in errors)
    assert any(e.startswith("scripts[1].event:") for e in errors)
    assert any(e.startswith("scripts[3].script: duplicate binding") for e in errors)
    assert "scripts[4].interval: a periodic binding needs an interval (seconds, more than 0)" \
        in errors
    assert not ScriptBinding.objects.exists() and not ObserverProfile.objects.exists()
