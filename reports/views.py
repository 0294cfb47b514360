"""R11.3: the reports pages: the list, a report with its filters, table, totals and chart,
its XLSX, PDF, CSV and JSON (`?format=`), and, over a period longer than REPORTS_SYNC_DAYS,
the job that computes it in a worker behind a progress page.

Rights: every report needs `billing.view_call`; the provider's charges and payments also
`billing.view_charge` and `billing.view_payment` (reports.catalogue)."""
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from billing.models import Subscriber, SubscriberGroup
from reports.catalogue import REPORTS, SECTIONS, ReportKind
from reports.charts import chart_data
from reports.exports import CONTENT_TYPES, export, filename
from reports.forms import ReportFilterForm, default_period, group_label, subscriber_label
from reports.jobs import report_decode, report_job_start, sync_days
from reports.models import ReportJob
from reports.selectors import Report, period_days
from reports.tables import header, text_rows, text_totals

VIEW = "billing.view_call"
FORMATS = ("xlsx", "pdf", "csv", "json")
SUGGESTIONS = 15


def _guarded(view):
    return login_required(permission_required(VIEW, raise_exception=True)(view))


def _kind(request, name) -> ReportKind:
    kind = REPORTS.get(name)
    if kind is None:
        raise Http404("no such report")
    if not request.user.has_perms(kind.permissions):
        raise PermissionDenied
    return kind


@require_GET
@_guarded
def report_index(request):
    """The reports the user may run, by section."""
    sections = {section: [] for section in SECTIONS}
    for kind in REPORTS.values():
        if request.user.has_perms(kind.permissions):
            sections[kind.section].append(kind)
    return render(request, "reports/index.html",
                  {"sections": [(s, kinds) for s, kinds in sections.items() if kinds]})


@require_GET
@_guarded
def report_page(request, name):
    """A report: its filters (GET; this month when none are given), then its table,
    totals per currency and chart, or with `format` the same report as a file."""
    kind = _kind(request, name)
    query = request.GET.copy()
    fmt = query.pop("format", [""])[-1]
    if fmt and fmt not in FORMATS:
        raise Http404("no such format")
    # Only the filters count: a link with nothing but `format` opens this month too.
    form = ReportFilterForm(query or default_period(), kind=kind)
    if not form.is_valid():
        return render(request, "reports/report.html", _context(kind, form, None))
    filters = form.filters()
    if period_days(filters["day_from"], filters["day_to"]) > sync_days():
        job = report_job_start(kind=kind, params=_params(form), user=request.user)
        return redirect("report_job", pk=job.pk)
    report = kind.run(filters)
    if fmt:
        return _download(kind, report, fmt, form)
    return render(request, "reports/report.html", _context(kind, form, report))


def _params(form) -> dict:
    """The filters as typed (what the form takes back), without the empty ones."""
    return {name: form.data.get(name) for name in form.fields if form.data.get(name)}


def _context(kind, form, report: Report | None, *, job=None) -> dict:
    context = {"kind": kind, "form": form, "report": report, "job": job,
               "query": urlencode(_params(form)), "sync_days": sync_days()}
    if report is not None:
        context.update({"header": header(kind, report), "rows": text_rows(kind, report),
                        "totals": text_totals(report), "chart": chart_data(kind, report),
                        "subscriber_links": kind.name in ("by_subscriber", "unanswered",
                                                          "short_calls")})
    return context


def _download(kind, report, fmt, form) -> HttpResponse:
    # A job's filters are checked again: a group removed since is said no more in the file.
    data = form.cleaned_data if form.is_valid() else {}
    lines = form.describe() if form.is_valid() else []
    response = HttpResponse(export(kind, report, fmt, lines), content_type=CONTENT_TYPES[fmt])
    name = filename(kind, data.get("date_from"), data.get("date_to"), fmt)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# -- reports over long periods

def _job(request, pk) -> tuple[ReportJob, ReportKind]:
    job = get_object_or_404(ReportJob, pk=pk)
    if job.user_id != request.user.pk and not request.user.is_superuser:
        raise Http404("no such job")
    return job, _kind(request, job.name)


@require_GET
@_guarded
def report_job(request, pk):
    """A long report's progress while it runs, its result when done (with `format`, the
    result as a file)."""
    job, kind = _job(request, pk)
    form = ReportFilterForm(job.params, kind=kind)
    report = report_decode(kind, job.result) if job.result is not None else None
    fmt = request.GET.get("format", "")
    if fmt:
        if fmt not in FORMATS or report is None:
            raise Http404("no such file")
        return _download(kind, report, fmt, form)
    context = _context(kind, form, report, job=job)
    context["lines"] = form.describe() if form.is_valid() else []
    return render(request, "reports/job.html", context)


@require_GET
@_guarded
def report_job_status(request, pk):
    """{state, done, error, next}: what the progress page polls."""
    job, _kind_ = _job(request, pk)
    return JsonResponse({"state": job.state, "label": str(job.get_state_display()),
                         "done": job.done, "error": job.error,
                         "next": reverse("report_job", args=[job.pk])})


# -- suggestions for the group and subscriber fields

def _typed(request) -> str:
    for name in ("q", "group", "subscriber"):
        if request.GET.get(name):
            return request.GET[name].strip()[:100]
    return ""


@require_GET
@_guarded
def lookup_groups(request):
    """Groups whose name holds what was typed: <option>s for the field's datalist."""
    q = _typed(request)
    options = []
    if q:
        found = (SubscriberGroup.objects.filter(name__icontains=q).select_related("node")
                 .order_by("name", "node__name")[:SUGGESTIONS])
        options = [{"value": group_label(g), "text": ""} for g in found]
    return render(request, "reports/lookup_options.html", {"options": options})


@require_GET
@_guarded
def lookup_subscribers(request):
    """Subscribers whose name, account or number holds what was typed."""
    q = _typed(request)
    options = []
    if q:
        found = (Subscriber.objects.filter(Q(full_name__icontains=q)
                                           | Q(account_number__icontains=q)
                                           | Q(numbers__dn__icontains=q))
                 .select_related("group").distinct().order_by("full_name", "pk")[:SUGGESTIONS])
        options = [{"value": subscriber_label(s), "text": s.group.name if s.group_id else ""}
                   for s in found]
    return render(request, "reports/lookup_options.html", {"options": options})
