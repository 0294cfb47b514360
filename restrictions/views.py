"""R8, R11.1: the operator's Restrictions pages: who is closed and what the PBXs still have
to do, the connectors' state and the call control's latest actions (the overview); limits
with this month's usage; closing and reopening by hand; the history of classes with what
the PBX answered; the call control's actions; authorization codes.

Viewing needs restrictions.view_closure; each change needs its model's right, and a page
offers only the changes its user may make. A connector's credentials are never shown."""
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.models import Device, Subscriber, SubscriberGroup
from restrictions.connectors import ConnectorError
from restrictions.forms import (
    ActionFilter,
    AuthCodeForm,
    CloseForm,
    CodeFilter,
    HistoryFilter,
    LimitForm,
    ReopenForm,
    group_label,
    subscriber_label,
)
from restrictions.models import (
    AuthCode,
    Cause,
    ClassChange,
    Closure,
    ControlAction,
    Limit,
    LimitMonth,
    PbxChange,
    PbxControl,
)
from restrictions.selectors import (
    group_tree,
    limit_usage,
    month_of,
    zone_of_group,
    zone_of_subscriber,
)
from restrictions.services import (
    auth_code_create,
    auth_code_delete,
    auth_code_update,
    closure_make,
    closure_reopen,
    limit_create,
    limit_delete,
    limit_text,
    limit_update,
)
from restrictions.sync import NoConnector, SyncRefused, pbx_sync
from tariffs.choices import CallType

PAGE = 50
SUGGESTIONS = 20
LATEST_ACTIONS = 20
CHANGES_SHOWN = 100  # PBX changes not done, on the overview
PBX_PER_ROW = 10  # PBX changes shown per row of the history (a group's may be thousands)
# Keys of a connector's configuration whose values are never shown, nor left in an error
# shown on a page (a PBX's error may quote what it was sent).
SECRET_KEYS = ("client_secret", "password", "secret", "token", "api_key")
VIEW = "restrictions.view_closure"


def _page(request, queryset):
    return Paginator(queryset, PAGE).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _refused(request, form, exc: ValidationError):
    """A service's ValidationError onto the form: each message on the field it is about."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# -- reads of these pages
# They would be selectors (STYLE: reads of more than one filter() go in selectors.py);
# restrictions/selectors.py was another engineer's to edit when these pages were written,
# and these reads have no other user yet, so they live beside their views.

def _without_credentials(url: str) -> str:
    """A connector's URL as shown: no user, password or query (a token may travel there)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def _masked(text: str, connector: dict) -> str:
    """`text` with every credential of `connector` blotted out."""
    for key, value in connector.items():
        if any(word in key.lower() for word in SECRET_KEYS) and isinstance(value, str) and value:
            text = text.replace(value, "•••")
    return text


def _connector_states() -> list[dict]:
    """Each device's connector as the overview shows it: never its credentials."""
    states = []
    for control in PbxControl.objects.select_related("device").order_by("device__name"):
        connector = control.connector or {}
        states.append({
            "device": control.device, "type": connector.get("type", ""),
            "url": _without_credentials(str(connector.get("url", ""))),
            "last_contact_at": control.last_contact_at, "last_poll_at": control.last_poll_at,
            "last_sync_at": control.last_sync_at,
            "last_sync": ", ".join(f"{key} {value}" for key, value in
                                   sorted((control.last_sync or {}).items())),
            "last_error": _masked(control.last_error, connector),
            "last_error_at": control.last_error_at,
        })
    return states


def _changes_not_done():
    return (PbxChange.objects.filter(status__in=[PbxChange.Status.PENDING,
                                                 PbxChange.Status.FAILED,
                                                 PbxChange.Status.CONFLICT])
            .select_related("device").order_by("pk"))


class _Zones:
    """The zone each limit's month is counted in (restrictions.selectors), asked once per
    subscriber and per group of a page."""

    def __init__(self):
        self.subscribers, self.groups = {}, {}

    def of(self, limit: Limit):
        if limit.subscriber_id is not None:
            if limit.subscriber_id not in self.subscribers:
                self.subscribers[limit.subscriber_id] = zone_of_subscriber(limit.subscriber_id)
            return self.subscribers[limit.subscriber_id]
        if limit.group_id not in self.groups:
            self.groups[limit.group_id] = zone_of_group(limit.group_id)
        return self.groups[limit.group_id]


def _limit_rows(limits, now) -> list[dict]:
    """Each limit with its usage this month in its target's zone, as a percentage, and
    whether it warned or was reached this month."""
    limits = list(limits)
    parents, zones = group_tree(), _Zones()
    months = {limit.pk: month_of(now, zones.of(limit)) for limit in limits}
    states = {(state.limit_id, state.month): state for state in LimitMonth.objects.filter(
        limit_id__in=months, month__in=set(months.values()))}
    rows = []
    for limit in limits:
        month = months[limit.pk]
        used = limit_usage(limit, month, parents)
        amount = limit.money if limit.money is not None else limit.seconds
        percent = int(Decimal(used) * 100 / Decimal(amount)) if amount else 100
        state = states.get((limit.pk, month))
        rows.append({"limit": limit, "month": month, "used": used, "percent": percent,
                     "bar": min(percent, 100), "text": limit_text(limit, used),
                     "call_types": ", ".join(_call_type_names(limit.call_types)) or "all",
                     "warned_at": state.warned_at if state else None,
                     "reached_at": state.reached_at if state else None})
    return rows


def _call_type_names(values) -> list[str]:
    names = {t.value: t.label for t in CallType}
    return [names.get(value, str(value)) for value in values]


def _history_list(*, q: str = "", cause: str = ""):
    changes = ClassChange.objects.select_related("subscriber", "group__node", "closure")
    if q:
        changes = changes.filter(Q(subscriber__full_name__icontains=q)
                                 | Q(subscriber__account_number__icontains=q)
                                 | Q(group__name__icontains=q))
    if cause:
        changes = changes.filter(cause=cause)
    return changes.prefetch_related(Prefetch(
        "closure__pbx_changes", queryset=PbxChange.objects.select_related("device").order_by("pk")
    )).order_by("-at", "-pk")


def _with_pbx_answers(page) -> None:
    """Each class change of the page with the PBX changes it caused: the closes of a
    closure's "closed", the reopens of its "open"."""
    for change in page:
        action = PbxChange.Action.CLOSE if change.new_class == "closed" else PbxChange.Action.REOPEN
        made = [pbx for pbx in change.closure.pbx_changes.all() if pbx.action == action]
        change.pbx_shown, change.pbx_more = made[:PBX_PER_ROW], len(made) - PBX_PER_ROW


def _masked_code(code: str) -> str:
    """An authorization code as pages show it: all but its last two digits hidden."""
    if len(code) <= 2:
        return "•" * len(code)
    return "•" * (len(code) - 2) + code[-2:]


# -- the overview, closing and reopening

@login_required
@permission_required(VIEW, raise_exception=True)
def overview(request):
    """R8.2: who is closed (with a reopen), the PBX changes not done yet, each device's
    connector, and the call control's latest actions."""
    closures = (Closure.objects.filter(reopened_at__isnull=True)
                .select_related("subscriber", "group__node", "limit").order_by("-closed_at", "-pk"))
    changes = _changes_not_done()
    return render(request, "restrictions/overview.html", {
        "page": _page(request, closures), "query": _query_without_page(request),
        "changes": changes[:CHANGES_SHOWN], "changes_count": changes.count(),
        "connectors": _connector_states(),
        "actions": ControlAction.objects.select_related("device", "subscriber")[:LATEST_ACTIONS],
        "reopen_form": ReopenForm(),
        "can_sync": request.user.has_perms(SYNC_PERMISSIONS),
    })


# A sync creates and changes subscribers and their numbers.
SYNC_PERMISSIONS = ("billing.add_subscriber", "billing.change_subscriber",
                    "billing.add_phonenumber", "billing.change_phonenumber")


@login_required
@require_POST
def pbx_sync_now(request, device_id):
    """R8.10: sync a device's extensions into subscribers now (what runs every
    sync_minutes), and say what it did or why it could not."""
    if not request.user.has_perms(SYNC_PERMISSIONS):
        raise PermissionDenied
    device = get_object_or_404(Device, pk=device_id)
    try:
        counts = pbx_sync(device=device)
    except (NoConnector, SyncRefused, ConnectorError) as exc:
        messages.error(request, f"{device.name}: the extensions were not synced: "
                                f"{_masked(str(exc), _connector_of(device))}")
    else:
        messages.success(request, f"{device.name}: extensions synced: " + ", ".join(
            f"{counts[key]} {key}" for key in ("created", "updated", "ended", "unchanged")))
    return redirect("restrictions")


def _connector_of(device) -> dict:
    control = PbxControl.objects.filter(device=device).first()
    return control.connector if control is not None else {}


@login_required
@permission_required("restrictions.add_closure", raise_exception=True)
def close(request):
    """R8.2: close a subscriber or a group by hand (cause "operator", by the user)."""
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        target = data["subscriber"] or data["group"]
        closure = closure_make(subscriber=data["subscriber"], group=data["group"],
                               cause=Cause.OPERATOR, reason=data["reason"],
                               by=request.user.get_username())
        if closure is None:
            form.add_error(None, f"{target} is closed already; reopen it first to close it "
                                 "again for another reason.")
        else:
            changes = closure.pbx_changes.count()
            messages.success(request, f"{target} closed: " + (
                f"{changes} extension(s) to close on the PBX." if changes else
                "no extension of it is on a PBX the system controls, so no PBX changes."))
            return redirect("restrictions")
    return render(request, "restrictions/close.html", {"form": form})


@login_required
@permission_required("restrictions.change_closure", raise_exception=True)
def reopen(request, pk):
    """R8.2: reopen a closure by hand, saying why."""
    closure = get_object_or_404(Closure.objects.select_related("subscriber", "group__node"),
                                pk=pk)
    form = ReopenForm(request.POST or None)
    if not closure.is_open:
        messages.info(request, f"{closure.subscriber or closure.group} was reopened already by "
                               f"{closure.reopened_by} ({closure.reopen_reason}).")
        return redirect("restrictions")
    if request.method == "POST" and form.is_valid():
        closure = closure_reopen(closure=closure, by=request.user.get_username(),
                                 reason=form.cleaned_data["reason"])
        changes = closure.pbx_changes.filter(action=PbxChange.Action.REOPEN).count()
        messages.success(request, f"{closure.subscriber or closure.group} reopened" + (
            f": {changes} extension(s) to reopen on the PBX." if changes else "."))
        return redirect("restrictions")
    return render(request, "restrictions/reopen.html", {"closure": closure, "form": form})


# -- limits

@login_required
@permission_required(VIEW, raise_exception=True)
def limits(request):
    """R8.1: the limits, each with this month's usage in its target's zone."""
    page = _page(request, Limit.objects.select_related("subscriber", "group__node")
                 .order_by("pk"))
    return render(request, "restrictions/limits.html", {
        "page": page, "rows": _limit_rows(page, timezone.now()), "query": ""})


def _limit_form_page(request, form, limit=None):
    if request.method == "POST" and form.is_valid():
        try:
            if limit is None:
                limit = limit_create(**form.fields_for_service())
                messages.success(request, f"Limit set: {limit}" + (
                    "; its subscribers are checked against it now." if limit.enabled else
                    " (disabled)."))
            else:
                limit = limit_update(limit=limit, **form.fields_for_service())
                messages.success(request, f"Limit saved: {limit}.")
                if limit.closures.filter(reopened_at__isnull=True).exists():
                    messages.warning(request, "The closure this limit made is still in "
                                              "force: reopen it on the Restrictions page if "
                                              "the new amount should let calls through.")
        except ValidationError as exc:
            _refused(request, form, exc)
        else:
            return redirect("restrictions_limits")
    return render(request, "restrictions/limit_edit.html", {"form": form, "limit": limit})


@login_required
@permission_required("restrictions.add_limit", raise_exception=True)
def limit_new(request):
    return _limit_form_page(request, LimitForm(request.POST or None))


@login_required
@permission_required("restrictions.change_limit", raise_exception=True)
def limit_edit(request, pk):
    limit = get_object_or_404(Limit.objects.select_related("subscriber", "group__node"), pk=pk)
    return _limit_form_page(request, LimitForm(request.POST or None,
                                               initial=LimitForm.initial_of(limit)), limit)


@login_required
@permission_required("restrictions.delete_limit", raise_exception=True)
def limit_remove(request, pk):
    """Asks first; the closures the limit made stay until the month ends or a reopen."""
    limit = get_object_or_404(Limit.objects.select_related("subscriber", "group__node"), pk=pk)
    if request.method == "POST":
        text = str(limit)
        limit_delete(limit=limit)
        messages.success(request, f"Limit removed: {text}.")
        return redirect("restrictions_limits")
    return render(request, "restrictions/limit_delete.html", {
        "limit": limit, "closed": limit.closures.filter(reopened_at__isnull=True).exists()})


# -- history and call control

@login_required
@permission_required(VIEW, raise_exception=True)
def history(request):
    """R8.2: the changes of class, newest first, each with what the PBX answered."""
    filters = HistoryFilter(request.GET or None)
    changes = _history_list()
    if filters.is_valid():
        changes = _history_list(q=filters.cleaned_data["q"].strip(),
                                cause=filters.cleaned_data["cause"])
    elif filters.is_bound:
        changes = changes.none()
    page = _page(request, changes)
    _with_pbx_answers(page)
    return render(request, "restrictions/history.html", {
        "filters": filters, "page": page, "query": _query_without_page(request)})


@login_required
@permission_required(VIEW, raise_exception=True)
def actions(request):
    """R8.3-R8.7: what the call control did to active calls."""
    filters = ActionFilter(request.GET or None)
    found = ControlAction.objects.select_related("device", "subscriber")
    if filters.is_valid():
        if filters.cleaned_data["device"] is not None:
            found = found.filter(device=filters.cleaned_data["device"])
        if filters.cleaned_data["rule"]:
            found = found.filter(rule=filters.cleaned_data["rule"])
    elif filters.is_bound:
        found = found.none()
    return render(request, "restrictions/actions.html", {
        "filters": filters, "page": _page(request, found.order_by("-at", "-pk")),
        "query": _query_without_page(request)})


# -- authorization codes

@login_required
@permission_required(VIEW, raise_exception=True)
def codes(request):
    """R8.6: the authorization codes, masked but for their last two digits."""
    filters = CodeFilter(request.GET or None)
    found = AuthCode.objects.select_related("subscriber")
    if filters.is_valid() and filters.cleaned_data["q"].strip():
        q = filters.cleaned_data["q"].strip()
        found = found.filter(Q(subscriber__full_name__icontains=q)
                             | Q(subscriber__account_number__icontains=q))
    page = _page(request, found.order_by("subscriber__full_name", "pk"))
    rows = [{"pk": code.pk, "masked": _masked_code(code.code), "subscriber": code.subscriber,
             "enabled": code.enabled, "description": code.description} for code in page]
    return render(request, "restrictions/codes.html", {
        "filters": filters, "page": page, "rows": rows, "query": _query_without_page(request)})


def _code_form_page(request, form, auth_code=None):
    if request.method == "POST" and form.is_valid():
        try:
            if auth_code is None:
                auth_code = auth_code_create(**form.fields_for_service())
            else:
                auth_code = auth_code_update(auth_code=auth_code, **form.fields_for_service())
        except ValidationError as exc:
            _refused(request, form, exc)
        else:
            messages.success(request, f"Code {_masked_code(auth_code.code)} of "
                                      f"{auth_code.subscriber} saved.")
            return redirect("restrictions_codes")
    return render(request, "restrictions/code_edit.html", {
        "form": form, "auth_code": auth_code,
        "masked": _masked_code(auth_code.code) if auth_code else ""})


@login_required
@permission_required("restrictions.add_authcode", raise_exception=True)
def code_new(request):
    return _code_form_page(request, AuthCodeForm(request.POST or None))


@login_required
@permission_required("restrictions.change_authcode", raise_exception=True)
def code_edit(request, pk):
    auth_code = get_object_or_404(AuthCode.objects.select_related("subscriber"), pk=pk)
    form = AuthCodeForm(request.POST or None, editing=True, initial={
        "subscriber": auth_code.subscriber, "description": auth_code.description,
        "enabled": auth_code.enabled})
    return _code_form_page(request, form, auth_code)


@login_required
@permission_required("restrictions.delete_authcode", raise_exception=True)
def code_remove(request, pk):
    auth_code = get_object_or_404(AuthCode.objects.select_related("subscriber"), pk=pk)
    masked = _masked_code(auth_code.code)
    if request.method == "POST":
        auth_code_delete(auth_code=auth_code)
        messages.success(request, f"Code {masked} of {auth_code.subscriber} removed.")
        return redirect("restrictions_codes")
    return render(request, "restrictions/code_delete.html", {"auth_code": auth_code,
                                                             "masked": masked})


# -- suggestions for the subscriber and group fields

@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def lookup_subscribers(request):
    """Subscribers whose name, account or number holds `q`: <option>s for the field's
    datalist."""
    q = request.GET.get("q", "").strip()[:100]
    found = []
    if q:
        matches = (Subscriber.objects.filter(Q(full_name__icontains=q)
                                             | Q(account_number__icontains=q)
                                             | Q(numbers__dn__icontains=q))
                   .select_related("group").distinct().order_by("full_name", "pk"))
        found = [{"value": subscriber_label(s), "text": s.group.name if s.group_id else ""}
                 for s in matches[:SUGGESTIONS]]
    return render(request, "restrictions/lookup_options.html", {"options": found})


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def lookup_groups(request):
    """Groups whose name holds `q`: <option>s for the field's datalist."""
    q = request.GET.get("q", "").strip()[:100]
    found = []
    if q:
        matches = (SubscriberGroup.objects.filter(name__icontains=q).select_related("node")
                   .order_by("name", "node__name"))
        found = [{"value": group_label(g), "text": ""} for g in matches[:SUGGESTIONS]]
    return render(request, "restrictions/lookup_options.html", {"options": found})
