"""R11.2: the calls browser, its exports and a call's page.

Looking at calls needs the right billing.view_call. The filters are billing.filters.CallFilter,
the columns billing.tables.CallTable, for the page and for the exports alike."""
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import EmptyPage
from django.db.models import Count, Sum
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from billing.exports import CALL_COLUMNS, call_rows, csv_pieces, xlsx_pieces
from billing.filters import CallFilter
from billing.models import Call
from billing.tables import CallTable

PAGE_SIZE = 50
RIGHT = "billing.view_call"
EXPORTS = {
    "csv": ("text/csv; charset=utf-8", "calls.csv", csv_pieces),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "calls.xlsx",
             xlsx_pieces),
}
# The part of the page that sorting and paging replace (htmx).
RESULTS = "calls-results"


def call_totals(calls) -> dict:
    """The filtered set's count, seconds and cost per currency, in one query: costs in
    different currencies are never added together."""
    rows = list(calls.order_by().values("currency").annotate(
        count=Count("id"), duration=Sum("duration"), cost=Sum("cost")).order_by("currency"))
    return {
        "count": sum(row["count"] for row in rows),
        "duration": sum(row["duration"] or 0 for row in rows),
        "costs": [{"currency": row["currency"], "cost": row["cost"]}
                  for row in rows if row["cost"] is not None],
    }


@login_required
@permission_required(RIGHT, raise_exception=True)
def calls(request):
    """The calls browser: filters, totals, one page of calls; `?export=csv|xlsx` gives the
    filtered calls as a file, streamed."""
    filters = CallFilter(request.GET or None)
    table = CallTable(filters.qs, order_by=request.GET.get("sort") or None)
    export = request.GET.get("export")
    if export:
        if export not in EXPORTS:
            # Plain text: the format named is the visitor's own input.
            return HttpResponseBadRequest(_("Unknown export format: %(format)s.")
                                          % {"format": export[:20]},
                                          content_type="text/plain; charset=utf-8")
        if filters.is_valid():
            return _export(table, export)
    _paginate(request, table)
    context = {"filter": filters, "table": table, "totals": call_totals(filters.qs),
               "searches": filters.search_values(), "results_id": RESULTS}
    # An invalid filter with an export answers with the page and its errors, not a file.
    status = 400 if export else 200
    if request.htmx and request.htmx.target == RESULTS and status == 200:
        response = render(request, "billing/calls/results.html", context)
    else:
        response = render(request, "billing/calls.html", context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _paginate(request, table) -> None:
    """The page asked for; the first when it is no number, the last when beyond it."""
    try:
        number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        number = 1
    try:
        table.paginate(per_page=PAGE_SIZE, page=number)
    except EmptyPage:
        table.paginate(per_page=PAGE_SIZE, page=table.paginator.num_pages)


def _export(table: CallTable, export: str) -> StreamingHttpResponse:
    content_type, filename, pieces = EXPORTS[export]
    response = StreamingHttpResponse(pieces(CALL_COLUMNS, call_rows(table.ordered_calls())),
                                     content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@permission_required(RIGHT, raise_exception=True)
def call_detail(request, pk):
    """One call with the explanation of its cost."""
    call = get_object_or_404(
        Call.objects.select_related("device", "subscriber", "operator", "plan", "tariff", "route"),
        pk=pk)
    return render(request, "billing/call_detail.html", {"call": call})
