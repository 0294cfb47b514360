"""R1, R3.1, R4.2, R11.1: the Settings pages of the topology: nodes, devices with their
dial plan and their routes and gateways, the group tree, a node's holidays.

Looking needs a login; each change needs its model's right (billing.add_node,
billing.change_device, billing.delete_subscribergroup, ...), and a page offers only the
changes its user may make. Every write goes through billing.directory; a delete says what
it would touch and asks, or, when the database forbids it (a device's calls), says why.
(A device's PBX connector is edited on the Restrictions pages.)"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods

from billing.directory import (
    DIAL_PLAN_FIELDS,
    DeleteRefused,
    device_create,
    device_delete,
    device_delete_refusal,
    device_update,
    group_create,
    group_delete,
    group_update,
    holiday_create,
    holiday_delete,
    holiday_update,
    node_create,
    node_delete,
    node_delete_refusal,
    node_update,
    route_create,
    route_delete,
    route_update,
)
from billing.forms import DeviceForm, GroupForm, HolidayForm, NodeForm, RouteForm
from billing.models import Device, Holiday, Node, Route, SubscriberGroup
from billing.selectors import delete_impact, group_forest

GET_POST = require_http_methods(["GET", "POST"])
SETTINGS = gettext_lazy("Settings")


def form_refused(form, exc: ValidationError) -> None:
    """A service's refusal onto the form: each message under the field it is about, the
    rest above the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _may(right: str):
    """A page or action for users with `right`; a 403 for the others."""
    def wrap(view):
        return login_required(permission_required(right, raise_exception=True)(GET_POST(view)))
    return wrap


def _crumbs(*more) -> list[tuple[str, str]]:
    return [(SETTINGS, reverse("settings")), *more]


def _delete_page(request, *, title, impact, cancel, crumbs, note="", refused=""):
    refused = refused or "; ".join(
        ngettext("%(count)d %(name)s refers to it", "%(count)d %(name)s refer to it",
                 row["count"]) % {"count": row["count"], "name": row["name"]}
        for row in impact if row["effect"] == "refused")
    return render(request, "billing/directory/delete.html", {
        "title": title, "impact": impact, "note": note, "refused": refused, "cancel": cancel,
        "crumbs": crumbs})


def _form_page(request, template, *, heading, cancel, **context):
    return render(request, f"billing/directory/{template}",
                  {"heading": heading, "cancel": cancel, **context})


# -- nodes

@login_required
def node_list(request):
    """R1.1: the nodes with their devices, groups and holidays counted."""
    nodes = Node.objects.annotate(
        device_count=Count("devices", distinct=True), group_count=Count("groups", distinct=True),
        holiday_count=Count("holidays", distinct=True)).order_by("name")
    return render(request, "billing/directory/nodes.html", {
        "nodes": nodes, "crumbs": _crumbs()})


@login_required
def node_detail(request, pk):
    """R1.1: a node, its devices, its group tree and its holidays."""
    node = get_object_or_404(Node, pk=pk)
    return render(request, "billing/directory/node.html", {
        "node": node,
        "devices": node.devices.annotate(route_count=Count("routes")).order_by("name"),
        "groups": group_forest(node=node),
        "holidays": node.holidays.order_by("-date")[:20],
        "crumbs": _crumbs((_("Nodes"), reverse("nodes"))),
    })


@_may("billing.add_node")
def node_new(request):
    form = NodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            node = node_create(**form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Node %(name)s created.") % {"name": node.name})
            return redirect("node", node.pk)
    return _form_page(request, "edit.html", form=form, heading=_("New node"),
                      cancel=reverse("nodes"), crumbs=_crumbs((_("Nodes"), reverse("nodes"))))


@_may("billing.change_node")
def node_edit(request, pk):
    node = get_object_or_404(Node, pk=pk)
    form = NodeForm(request.POST or None, initial={
        "name": node.name, "country": node.country, "description": node.description})
    if request.method == "POST" and form.is_valid():
        try:
            node_update(node=node, **form.cleaned_data)
        except ValidationError as exc:
            node.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Node %(name)s saved.") % {"name": node.name})
            return redirect("node", node.pk)
    return _form_page(request, "edit.html", form=form, node=node,
                      heading=_("Node %(name)s") % {"name": node.name},
                      cancel=reverse("node", args=[node.pk]), crumbs=_crumbs((_("Nodes"), reverse("nodes")),
                                     (node.name, reverse("node", args=[node.pk]))))


@_may("billing.delete_node")
def node_remove(request, pk):
    """R1.1: a node goes with its groups and holidays; one with devices is refused."""
    node = get_object_or_404(Node, pk=pk)
    if request.method == "POST":
        try:
            node_delete(node=node)
        except DeleteRefused as exc:
            messages.error(request, str(exc))
            return redirect("node_delete", pk)
        messages.success(request, _("Node %(name)s removed.") % {"name": node.name})
        return redirect("nodes")
    groups = list(node.groups.values_list("pk", flat=True))
    impact = delete_impact(Node, [pk]) + delete_impact(SubscriberGroup, groups)
    return _delete_page(
        request, title=_("Remove node %(name)s?") % {"name": node.name}, impact=impact,
        refused=node_delete_refusal(node), cancel=reverse("node", args=[pk]),
        note=_("Its groups go with it; their subscribers stay, without a group."),
        crumbs=_crumbs((_("Nodes"), reverse("nodes")), (node.name, reverse("node", args=[pk]))))


# -- devices

@login_required
def device_list(request):
    """R1.1: every device with its node, type, zone and default carrier."""
    devices = Device.objects.select_related("node", "default_operator", "default_plan").annotate(
        route_count=Count("routes")).order_by("node__name", "name")
    return render(request, "billing/directory/devices.html", {
        "devices": devices, "crumbs": _crumbs()})


def _device_crumbs(device=None):
    crumbs = [(_("Devices"), reverse("devices"))]
    if device is not None:
        crumbs.append((device.name, reverse("device", args=[device.pk])))
    return _crumbs(*crumbs)


@login_required
def device_detail(request, pk):
    """R1.1-R1.2, R3.1: a device, its dial plan, its routes and gateways."""
    device = get_object_or_404(
        Device.objects.select_related("node", "default_operator", "default_plan").prefetch_related(
            Prefetch("routes", queryset=Route.objects.select_related("operator"))), pk=pk)
    dial_plan = [(DeviceForm.base_fields[name].label, getattr(device, name))
                 for name in DIAL_PLAN_FIELDS if name != "auth_code_position"]
    return render(request, "billing/directory/device.html", {
        "device": device, "dial_plan": dial_plan, "crumbs": _device_crumbs()})


def _device_values(form) -> dict:
    return dict(form.cleaned_data)


@_may("billing.add_device")
def device_new(request):
    initial = {"node": request.GET.get("node")} if request.GET.get("node", "").isdigit() else {}
    form = DeviceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            device = device_create(**_device_values(form))
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Device %(name)s created.") % {"name": device.name})
            return redirect("device", device.pk)
    return _form_page(request, "device_edit.html", form=form, heading=_("New device"),
                      cancel=reverse("devices"), crumbs=_device_crumbs())


@_may("billing.change_device")
def device_edit(request, pk):
    device = get_object_or_404(Device, pk=pk)
    form = DeviceForm(request.POST or None, initial={
        name: getattr(device, name) for name in DeviceForm.base_fields})
    if request.method == "POST" and form.is_valid():
        try:
            device_update(device=device, **_device_values(form))
        except ValidationError as exc:
            device.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Device %(name)s saved.") % {"name": device.name})
            return redirect("device", device.pk)
    return _form_page(request, "device_edit.html", form=form, device=device,
                      heading=_("Device %(name)s") % {"name": device.name},
                      cancel=reverse("device", args=[device.pk]), crumbs=_device_crumbs(device))


@_may("billing.delete_device")
def device_remove(request, pk):
    """R1.1: a device goes with its numbers, routes and observers; one with calls never."""
    device = get_object_or_404(Device, pk=pk)
    if request.method == "POST":
        try:
            device_delete(device=device)
        except DeleteRefused as exc:
            messages.error(request, str(exc))
            return redirect("device_delete", pk)
        messages.success(request, _("Device %(name)s removed.") % {"name": device.name})
        return redirect("devices")
    return _delete_page(
        request, title=_("Remove device %(name)s?") % {"name": device.name},
        impact=delete_impact(Device, [pk]), refused=device_delete_refusal(device),
        cancel=reverse("device", args=[pk]),
        note=_("The numbers given on it go with it: the subscribers keep their other numbers."),
        crumbs=_device_crumbs(device))


# -- routes and gateways (on the device's page)

@_may("billing.add_route")
def route_new(request, pk):
    device = get_object_or_404(Device, pk=pk)
    form = RouteForm(request.POST or None, initial={"operator": device.default_operator_id})
    if request.method == "POST" and form.is_valid():
        try:
            route = route_create(device=device, **form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Route %(name)s added.") % {"name": route.name})
            return redirect("device", pk)
    return _form_page(request, "edit.html", form=form, device=device,
                      heading=_("New route or gateway of %(device)s") % {"device": device.name},
                      cancel=reverse("device", args=[pk]), crumbs=_device_crumbs(device))


@_may("billing.change_route")
def route_edit(request, pk, route_pk):
    route = get_object_or_404(Route.objects.select_related("device"), pk=route_pk, device_id=pk)
    form = RouteForm(request.POST or None, initial={
        "name": route.name, "kind": route.kind, "operator": route.operator_id})
    if request.method == "POST" and form.is_valid():
        try:
            route_update(route=route, **form.cleaned_data)
        except ValidationError as exc:
            route.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Route %(name)s saved.") % {"name": route.name})
            return redirect("device", pk)
    return _form_page(request, "edit.html", form=form, device=route.device, route=route,
                      heading=_("Route %(name)s of %(device)s") % {
                          "name": route.name, "device": route.device.name},
                      cancel=reverse("device", args=[pk]), crumbs=_device_crumbs(route.device))


@_may("billing.delete_route")
def route_remove(request, pk, route_pk):
    route = get_object_or_404(Route.objects.select_related("device"), pk=route_pk, device_id=pk)
    if request.method == "POST":
        route_delete(route=route)
        messages.success(request, _("Route %(name)s removed.") % {"name": route.name})
        return redirect("device", pk)
    return _delete_page(
        request, title=_("Remove route %(name)s of %(device)s?") % {
            "name": route.name, "device": route.device.name},
        impact=delete_impact(Route, [route.pk]), cancel=reverse("device", args=[pk]),
        note=_("Its calls keep the route's name as the PBX wrote it, and are rated at the "
               "device's default operator when they are rated again."),
        crumbs=_device_crumbs(route.device))


# -- groups

@login_required
def group_list(request):
    """R1.3: the groups of every node as trees, with their subscribers counted."""
    return render(request, "billing/directory/groups.html", {
        "groups": group_forest(), "crumbs": _crumbs()})


def _group_crumbs():
    return _crumbs((_("Groups"), reverse("groups")))


@_may("billing.add_subscribergroup")
def group_new(request):
    initial = {"node": request.GET["node"]} if request.GET.get("node", "").isdigit() else {}
    if request.GET.get("parent", "").isdigit():  # "add a subgroup" of the groups' list
        initial["parent"] = SubscriberGroup.objects.select_related("node").filter(
            pk=int(request.GET["parent"])).first()
    form = GroupForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            group = group_create(**form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Group %(name)s created.") % {"name": group.name})
            return redirect("groups")
    return _form_page(request, "edit.html", form=form, heading=_("New group"),
                      cancel=reverse("groups"), crumbs=_group_crumbs())


@_may("billing.change_subscribergroup")
def group_edit(request, pk):
    group = get_object_or_404(SubscriberGroup.objects.select_related("node"), pk=pk)
    form = GroupForm(request.POST or None, group=group,
                     initial={"name": group.name, "parent": group.parent})
    if request.method == "POST" and form.is_valid():
        try:
            group_update(group=group, **form.cleaned_data)
        except ValidationError as exc:
            group.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Group %(name)s saved.") % {"name": group.name})
            return redirect("groups")
    return _form_page(request, "edit.html", form=form, group=group,
                      heading=_("Group %(name)s of %(node)s") % {
                          "name": group.name, "node": group.node.name},
                      cancel=reverse("groups"), crumbs=_group_crumbs())


@_may("billing.delete_subscribergroup")
def group_remove(request, pk):
    """R1.3: a group goes with its subgroups; their subscribers stay, without a group."""
    group = get_object_or_404(SubscriberGroup.objects.select_related("node"), pk=pk)
    if request.method == "POST":
        group_delete(group=group)
        messages.success(request, _("Group %(name)s removed.") % {"name": group.name})
        return redirect("groups")
    subtree = [row["group"].pk for row in _subtree_rows(group)]
    impact = delete_impact(SubscriberGroup, subtree)
    subgroups = len(subtree) - 1
    if subgroups:
        impact.insert(0, {"name": ngettext("subgroup", "subgroups", subgroups),
                          "relation": "children", "count": subgroups, "effect": "deleted"})
    return _delete_page(
        request, title=_("Remove group %(name)s of %(node)s?") % {
            "name": group.name, "node": group.node.name},
        impact=impact, cancel=reverse("groups"),
        note=_("Its subscribers and those of its subgroups are kept, without a group; their "
               "calls stay theirs."), crumbs=_group_crumbs())


def _subtree_rows(group) -> list[dict]:
    rows = group_forest(node=group.node)
    start = next(i for i, row in enumerate(rows) if row["group"].pk == group.pk)
    depth = rows[start]["depth"]
    found = [rows[start]]
    for row in rows[start + 1:]:
        if row["depth"] <= depth:
            break
        found.append(row)
    return found


# -- holidays

@login_required
def holiday_list(request):
    """R4.2: the nodes' own holidays (their country's public ones apply as well)."""
    nodes = Node.objects.order_by("name")
    node = None
    holidays = Holiday.objects.select_related("node").order_by("node__name", "-date")
    if request.GET.get("node", "").isdigit():
        node = get_object_or_404(Node, pk=int(request.GET["node"]))
        holidays = holidays.filter(node=node)
    return render(request, "billing/directory/holidays.html", {
        "holidays": holidays, "nodes": nodes, "node": node, "crumbs": _crumbs()})


def _holiday_crumbs():
    return _crumbs((_("Holidays"), reverse("holidays")))


@_may("billing.add_holiday")
def holiday_new(request):
    initial = {"node": request.GET["node"]} if request.GET.get("node", "").isdigit() else {}
    form = HolidayForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            holiday = holiday_create(**form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Holiday %(day)s added to %(node)s.") % {
                "day": holiday.date, "node": holiday.node.name})
            return redirect(f"{reverse('holidays')}?node={holiday.node_id}")
    return _form_page(request, "edit.html", form=form, heading=_("New holiday"),
                      cancel=reverse("holidays"), crumbs=_holiday_crumbs())


@_may("billing.change_holiday")
def holiday_edit(request, pk):
    holiday = get_object_or_404(Holiday.objects.select_related("node"), pk=pk)
    form = HolidayForm(request.POST or None, initial={
        "node": holiday.node_id, "date": holiday.date, "name": holiday.name})
    if request.method == "POST" and form.is_valid():
        try:
            holiday_update(holiday=holiday, **form.cleaned_data)
        except ValidationError as exc:
            holiday.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Holiday %(day)s saved.") % {"day": holiday.date})
            return redirect(f"{reverse('holidays')}?node={holiday.node_id}")
    return _form_page(request, "edit.html", form=form, holiday=holiday,
                      heading=_("Holiday %(day)s of %(node)s") % {
                          "day": holiday.date, "node": holiday.node.name},
                      cancel=reverse("holidays"), crumbs=_holiday_crumbs())


@_may("billing.delete_holiday")
def holiday_remove(request, pk):
    holiday = get_object_or_404(Holiday.objects.select_related("node"), pk=pk)
    if request.method == "POST":
        holiday_delete(holiday=holiday)
        messages.success(request, _("Holiday %(day)s removed.") % {"day": holiday.date})
        return redirect(f"{reverse('holidays')}?node={holiday.node_id}")
    return _delete_page(
        request, title=_("Remove the holiday %(day)s of %(node)s?") % {
            "day": holiday.date, "node": holiday.node.name}, impact=[],
        note=_("Calls of that day rated already keep their holiday rate until they are rated "
               "again."), cancel=reverse("holidays"), crumbs=_holiday_crumbs())
