"""R1, R3.1, R4.2, R11.1: the Settings pages of the topology, rendered for real: nodes,
devices with their dial plan and time zone (one that does not exist refused), routes and
gateways on the device's page, groups as a tree (a cycle and a parent of another node
refused with the reason), holidays per node; deletes that name what they touch, or refuse
with the count (a device's calls); the rights; the lists' query counts."""
import re
from datetime import date

import pytest
from django.contrib.auth.models import Group, Permission, User

from billing.models import Device, Holiday, Node, Route, Subscriber, SubscriberGroup
from tariscope.roles import ADMINISTRATOR, BILLING
from tests.factories import (
    DeviceFactory,
    NodeFactory,
    OperatorFactory,
    RouteFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
)
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

MODELS = ("node", "device", "route", "subscribergroup", "holiday")
RIGHTS = tuple(f"{action}_{model}" for model in MODELS for action in ("add", "change", "delete"))


def login(client, name: str, *codenames: str):
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename,
                                                         content_type__app_label="billing"))
    client.force_login(user)
    return client


@pytest.fixture
def admin(client, db):
    """An administrator of the topology."""
    return login(client, "admin", *RIGHTS)


@pytest.fixture
def viewer(client, db):
    return login(client, "viewer")


def field_errors(html: str, field: str) -> str:
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


def impact_of(html: str) -> dict:
    return dict(re.findall(r'<li data-relation="(\w+)">\s*(.*?)\s*</li>', html, re.S))


DEVICE = {
    "name": "OdesaPBX", "type": "asterisk", "timezone": "Europe/Kyiv", "access_code": "0",
    "national_prefix": "0", "international_prefix": "00", "country_code": "380",
    "area_code": "48", "extension_length": "4", "extension_pattern": "",
    "service_numbers": "101, 102,112", "auth_code_position": "before", "auth_code_length": "4",
}


# -- nodes

def test_a_node_is_made_and_edited_on_its_pages(admin):
    # when node Odesa (UA) is made, then described
    made = admin.post("/settings/nodes/new", {"name": "Odesa", "country": "ua",
                                              "description": ""})
    node = Node.objects.get(name="Odesa")
    assert made.status_code == 302 and made["Location"] == f"/settings/nodes/{node.pk}/"
    admin.post(f"/settings/nodes/{node.pk}/edit", {"name": "Odesa", "country": "UA",
                                                   "description": "Port office"})
    # then it holds them, and the list shows it
    node.refresh_from_db()
    assert (node.country, node.description) == ("UA", "Port office")
    assert "Odesa" in admin.get("/settings/nodes/").content.decode()


def test_a_node_with_a_wrong_country_or_a_name_in_use_is_refused(admin, site):
    wrong = admin.post("/settings/nodes/new", {"name": "Odesa", "country": "Ukraine"})
    taken = admin.post("/settings/nodes/new", {"name": "Kyiv", "country": "UA"})
    assert field_errors(wrong.content.decode(), "country")
    assert field_errors(taken.content.decode(), "name")
    assert list(Node.objects.values_list("name", flat=True)) == ["Kyiv"]


def test_a_node_with_devices_is_not_removed_and_the_page_says_why(admin, site):
    # given node Kyiv with KyivPBX and one call on it
    site.ingest(cdr_line(historyid="c1"))
    # when its removal is asked for, and sent anyway
    page = admin.get(f"/settings/nodes/{site.node.pk}/delete").content.decode()
    sent = admin.post(f"/settings/nodes/{site.node.pk}/delete", follow=True)
    # then the page says it has a device with a call, offers no removal, and it stays
    assert ("Node Kyiv has 1 device: remove it or move it to another node first. Its devices "
            "have 1 call, and a device with calls is never removed.") in page
    assert '<button type="submit">Remove</button>' not in page
    assert "Node Kyiv has 1 device:" in sent.content.decode()
    assert Node.objects.filter(pk=site.node.pk).exists()


def test_a_node_without_devices_goes_with_its_groups_and_says_so(admin):
    # given node Lviv with group Support of two subscribers, and a holiday
    node = NodeFactory(name="Lviv")
    support = SubscriberGroupFactory(node=node, name="Support")
    SubscriberFactory.create_batch(2, group=support)
    Holiday.objects.create(node=node, date=date(2024, 5, 4), name="City Day")
    # when its removal is asked for
    impact = impact_of(admin.get(f"/settings/nodes/{node.pk}/delete").content.decode())
    # then it names the group, the holiday and the subscribers left without a group
    assert impact == {"groups": "1 subscriber group: removed with it",
                      "holidays": "1 holiday: removed with it",
                      "subscribers": "2 subscribers: kept, without it"}
    # and when confirmed, the node and its group are gone, the subscribers stay
    admin.post(f"/settings/nodes/{node.pk}/delete")
    assert not Node.objects.filter(pk=node.pk).exists()
    assert not SubscriberGroup.objects.filter(pk=support.pk).exists()
    assert Subscriber.objects.filter(group__isnull=True).count() == 2


# -- devices

def test_a_device_is_made_with_its_dial_plan_zone_operator_and_plan(admin, site):
    # when OdesaPBX is sent with every dial plan field
    response = admin.post("/settings/devices/new", {
        **DEVICE, "node": site.node.pk, "default_operator": site.operator.pk,
        "default_plan": site.plan.pk})
    # then it is stored as sent (service numbers tidied) and its page shows the dial plan
    device = Device.objects.get(name="OdesaPBX")
    assert response.status_code == 302
    assert (device.node, device.type, device.timezone, device.access_code,
            device.national_prefix, device.international_prefix, device.country_code,
            device.area_code, device.extension_length, device.service_numbers,
            device.auth_code_position, device.auth_code_length, device.default_operator,
            device.default_plan) == (
        site.node, "asterisk", "Europe/Kyiv", "0", "0", "00", "380", "48", 4, "101,102,112",
        "before", 4, site.operator, site.plan)
    page = admin.get(f"/settings/devices/{device.pk}/").content.decode()
    assert "101,102,112" in page and "Europe/Kyiv" in page and "Ukrtelecom" in page


def test_a_time_zone_that_does_not_exist_is_refused_under_it_and_nothing_is_stored(admin, site):
    # when a device in "Europe/Kiev2" is made, and KyivPBX is moved to "Mars/Olympus"
    made = admin.post("/settings/devices/new", {**DEVICE, "node": site.node.pk,
                                                "timezone": "Europe/Kiev2"})
    edited = admin.post(f"/settings/devices/{site.device.pk}/edit", {
        **DEVICE, "name": "KyivPBX", "node": site.node.pk, "timezone": "Mars/Olympus"})
    # then both are refused under the time zone, naming it; nothing changed
    assert "“Europe/Kiev2” is not a time zone" in field_errors(made.content.decode(),
                                                                "timezone")
    assert "“Mars/Olympus” is not a time zone" in field_errors(edited.content.decode(),
                                                                "timezone")
    assert not Device.objects.filter(name="OdesaPBX").exists()
    site.device.refresh_from_db()
    assert (site.device.timezone, site.device.type) == ("Europe/Kyiv", "3cx")


def test_a_wrong_dial_plan_is_refused_field_by_field(admin, site):
    response = admin.post("/settings/devices/new", {
        **DEVICE, "node": site.node.pk, "access_code": "9a", "extension_pattern": "([0-9]",
        "service_numbers": "112,police", "auth_code_length": ""})
    html = response.content.decode()
    for field in ("access_code", "extension_pattern", "service_numbers", "auth_code_length"):
        assert field_errors(html, field), field
    assert not Device.objects.filter(name="OdesaPBX").exists()


def test_a_device_with_calls_is_not_removed_and_the_count_is_said(admin, site):
    # given two calls on KyivPBX
    site.ingest(cdr_line(historyid="c1"), cdr_line(historyid="c2", callid="x2"))
    # when its removal is asked for, and sent anyway
    page = admin.get(f"/settings/devices/{site.device.pk}/delete").content.decode()
    admin.post(f"/settings/devices/{site.device.pk}/delete")
    # then the page refuses with the count and offers no removal; the device stays
    assert "KyivPBX has 2 calls, and calls keep their device: it cannot be removed." in page
    assert '<button type="submit">Remove</button>' not in page
    assert Device.objects.filter(pk=site.device.pk).exists()


def test_a_device_without_calls_goes_with_its_numbers_and_routes_once_confirmed(admin, site,
                                                                               second_device):
    # given LvivPBX with a route and a number of Olena's
    RouteFactory(device=second_device, name="10001", operator=site.operator)
    site.colleague.numbers.create(device=second_device, dn="201", valid_from=date(2024, 1, 1))
    # when its removal is asked for, then confirmed
    impact = impact_of(admin.get(f"/settings/devices/{second_device.pk}/delete")
                       .content.decode())
    admin.post(f"/settings/devices/{second_device.pk}/delete")
    # then it named them, and they are gone with it (Olena keeps her 102)
    assert impact["numbers"] == "1 phone number: removed with it"
    assert impact["routes"] == "1 route: removed with it"
    assert not Device.objects.filter(pk=second_device.pk).exists()
    assert list(site.colleague.numbers.values_list("dn", flat=True)) == ["102"]


# -- routes and gateways

def test_routes_and_gateways_are_added_edited_and_removed_on_the_devices_page(admin, site):
    other = OperatorFactory(name="Kyivstar")
    base = f"/settings/devices/{site.device.pk}/routes"
    # when a route 10000 of Ukrtelecom is added, made a gateway of Kyivstar, and another added
    admin.post(f"{base}/new", {"name": "10000", "kind": "route", "operator": site.operator.pk})
    route = Route.objects.get(name="10000")
    admin.post(f"{base}/{route.pk}/edit", {"name": "10000", "kind": "gateway",
                                           "operator": other.pk})
    twice = admin.post(f"{base}/new", {"name": "10000", "kind": "route",
                                       "operator": site.operator.pk})
    # then it holds the change, the same name twice is refused, and the page lists it
    route.refresh_from_db()
    assert (route.device, route.kind, route.operator) == (site.device, "gateway", other)
    assert twice.status_code == 200 and "already exists" in twice.content.decode()
    routes = admin.get(f"/settings/devices/{site.device.pk}/").content.decode()
    assert "Kyivstar" in routes[routes.index('id="routes"'):]
    # and when it is removed, it is gone
    admin.post(f"{base}/{route.pk}/delete")
    assert not Route.objects.exists()


# -- groups

def test_groups_form_a_tree_and_the_list_shows_it(admin, site):
    # when Sales gets subgroup Sales East, and that one Sales East Retail
    admin.post("/settings/groups/new", {"node": site.node.pk, "name": "Sales East",
                                        "parent": "Sales · Kyiv"})
    SubscriberGroup.objects.get(name="Sales East")
    admin.post("/settings/groups/new", {"node": site.node.pk, "name": "Sales East Retail",
                                        "parent": "Sales East"})
    # then the list shows them in tree order with their depth
    html = admin.get("/settings/groups/").content.decode()
    depths = re.findall(r'<tr data-depth="(\d)"><td>[\u2003]*([^<]+)</td>', html)
    assert depths == [("0", "Sales"), ("1", "Sales East"), ("2", "Sales East Retail")]


def test_a_group_moved_under_its_own_subgroup_is_refused_with_the_reason(admin, site):
    # given Sales > Sales East > Retail
    east = SubscriberGroupFactory(node=site.node, name="Sales East", parent=site.sales)
    SubscriberGroupFactory(node=site.node, name="Retail", parent=east)
    # when Sales is put under Retail, and under itself
    cycle = admin.post(f"/settings/groups/{site.sales.pk}/edit", {"name": "Sales",
                                                                  "parent": "Retail"})
    itself = admin.post(f"/settings/groups/{site.sales.pk}/edit", {"name": "Sales",
                                                                   "parent": "Sales · Kyiv"})
    # then each is refused under the parent, saying why, and Sales stays at the root
    assert field_errors(cycle.content.decode(), "parent") == (
        "<li>Retail is inside Sales: a group cannot be placed under one of its own "
        "subgroups.</li>")
    assert "its own parent" in field_errors(itself.content.decode(), "parent")
    site.sales.refresh_from_db()
    assert site.sales.parent is None


def test_a_groups_parent_of_another_node_is_refused(admin, site, second_device):
    SubscriberGroupFactory(node=second_device.node, name="Lviv office")
    response = admin.post("/settings/groups/new", {"node": site.node.pk, "name": "Branch",
                                                   "parent": "Lviv office"})
    assert "Lviv office belongs to node Lviv" in field_errors(response.content.decode(),
                                                                   "parent")
    assert not SubscriberGroup.objects.filter(name="Branch").exists()


def test_removing_a_group_says_its_subgroups_and_subscribers_and_keeps_them(admin, site):
    # given Sales (Ivan and Olena) with subgroup Sales East (one subscriber)
    east = SubscriberGroupFactory(node=site.node, name="Sales East", parent=site.sales)
    SubscriberFactory(full_name="Taras", group=east)
    # when the removal of Sales is asked for, then confirmed
    impact = impact_of(admin.get(f"/settings/groups/{site.sales.pk}/delete").content.decode())
    admin.post(f"/settings/groups/{site.sales.pk}/delete")
    # then it said one subgroup goes and three subscribers stay without a group; so it is
    assert impact == {"children": "1 subgroup: removed with it",
                      "subscribers": "3 subscribers: kept, without it"}
    assert not SubscriberGroup.objects.exists()
    assert Subscriber.objects.filter(group__isnull=True).count() == 3


# -- holidays

def test_a_holiday_is_added_edited_and_the_same_day_twice_refused(admin, site):
    # when 4 May (City Day) is added to Kyiv, renamed, and added again
    admin.post("/settings/holidays/new", {"node": site.node.pk, "date": "2024-05-04",
                                          "name": "City Day"})
    holiday = Holiday.objects.get()
    admin.post(f"/settings/holidays/{holiday.pk}/edit", {"node": site.node.pk,
                                                         "date": "2024-05-25",
                                                         "name": "Kyiv Day"})
    twice = admin.post("/settings/holidays/new", {"node": site.node.pk, "date": "2024-05-25"})
    # then it holds the change, the second is refused, and the node's list shows it
    holiday.refresh_from_db()
    assert (holiday.node, holiday.date, holiday.name) == (site.node, date(2024, 5, 25),
                                                          "Kyiv Day")
    assert twice.status_code == 200 and Holiday.objects.count() == 1
    assert "errorlist" in twice.content.decode()
    assert "Kyiv Day" in admin.get(f"/settings/holidays/?node={site.node.pk}").content.decode()
    # and when removed, it is gone
    admin.post(f"/settings/holidays/{holiday.pk}/delete")
    assert not Holiday.objects.exists()


# -- rights and costs

def test_a_read_only_user_sees_no_button_and_every_change_is_refused(viewer, site):
    route = RouteFactory(device=site.device, name="10000", operator=site.operator)
    holiday = Holiday.objects.create(node=site.node, date=date(2024, 5, 4))
    node, device, group = site.node.pk, site.device.pk, site.sales.pk
    urls = ["/settings/nodes/new", f"/settings/nodes/{node}/edit",
            f"/settings/nodes/{node}/delete", "/settings/devices/new",
            f"/settings/devices/{device}/edit", f"/settings/devices/{device}/delete",
            f"/settings/devices/{device}/routes/new",
            f"/settings/devices/{device}/routes/{route.pk}/edit",
            f"/settings/devices/{device}/routes/{route.pk}/delete", "/settings/groups/new",
            f"/settings/groups/{group}/edit", f"/settings/groups/{group}/delete",
            "/settings/holidays/new", f"/settings/holidays/{holiday.pk}/edit",
            f"/settings/holidays/{holiday.pk}/delete"]
    # then the pages offer none of these
    pages = "".join(viewer.get(page).content.decode() for page in (
        "/settings/nodes/", f"/settings/nodes/{node}/", "/settings/devices/",
        f"/settings/devices/{device}/", "/settings/groups/", "/settings/holidays/"))
    assert [url for url in urls if f'"{url}' in pages] == []
    # and each, opened or sent, is refused; nothing changed
    for url in urls:
        assert viewer.get(url).status_code == 403, url
        assert viewer.post(url, {**DEVICE, "node": node, "date": "2024-06-01",
                                 "kind": "route", "operator": site.operator.pk}
                           ).status_code == 403, url
    assert (Node.objects.count(), Device.objects.count(), Route.objects.count(),
            SubscriberGroup.objects.count(), Holiday.objects.count()) == (1, 1, 1, 1, 1)


def test_an_administrator_sees_the_buttons(admin, site):
    pages = admin.get(f"/settings/devices/{site.device.pk}/").content.decode()
    assert f"/settings/devices/{site.device.pk}/routes/new" in pages
    assert f"/settings/groups/{site.sales.pk}/edit" in admin.get("/settings/groups/"
                                                                 ).content.decode()
    settings = admin.get("/settings/").content.decode()
    assert all(link in settings for link in ('"/settings/nodes/"', '"/settings/groups/"',
                                             '"/settings/holidays/"'))


def test_the_lists_cost_a_fixed_number_of_queries(viewer, site, django_assert_max_num_queries):
    # given 15 nodes, each with 2 devices, 3 groups (a chain), a route and 2 holidays
    for n in range(15):
        node = NodeFactory(name=f"Node {n}")
        for d in range(2):
            RouteFactory(device=DeviceFactory(node=node, name=f"PBX {n}-{d}",
                                              default_operator=site.operator,
                                              default_plan=site.plan),
                         operator=site.operator)
        parent = None
        for g in range(3):
            parent = SubscriberGroupFactory(node=node, name=f"G{n}-{g}", parent=parent)
            SubscriberFactory(group=parent)
        for day in (1, 2):
            Holiday.objects.create(node=node, date=date(2024, 1, day))
    # then each list costs the same few queries, whatever the rows
    for url, most in (("/settings/nodes/", 5), ("/settings/devices/", 5),
                      ("/settings/groups/", 5), ("/settings/holidays/", 6),
                      (f"/settings/nodes/{site.node.pk}/", 8),
                      (f"/settings/devices/{site.device.pk}/", 6)):
        with django_assert_max_num_queries(most):
            assert viewer.get(url).status_code == 200, url


def test_the_roles_give_the_settings_to_administrators_only(client, site):
    # given a billing operator and an administrator (tariscope/roles.py)
    billing = User.objects.create_user("billing", password="pw-billing-1")
    billing.groups.add(Group.objects.get(name=BILLING))
    administrator = User.objects.create_user("administrator", password="pw-admin-1")
    administrator.groups.add(Group.objects.get(name=ADMINISTRATOR))
    node = {"name": "Odesa", "country": "UA"}
    # when each makes a node
    client.force_login(billing)
    refused = client.post("/settings/nodes/new", node)
    client.force_login(administrator)
    made = client.post("/settings/nodes/new", node)
    # then only the administrator's is made
    assert (refused.status_code, made.status_code) == (403, 302)
    assert Node.objects.filter(name="Odesa").count() == 1
