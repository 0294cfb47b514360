"""R11.2: the calls browser and a call's page."""
import io

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from billing.exports import write_calls_csv
from billing.forms import CallFilterForm
from billing.models import Call
from billing.selectors import call_list

PAGE_SIZE = 50


@login_required
def calls(request):
    """The calls browser: filters, totals, one page of calls, CSV export."""
    form = CallFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    qs = call_list(filters=filters) if (form.is_valid() or not request.GET) else Call.objects.none()
    if request.GET.get("export") == "csv" and form.is_valid():
        buffer = io.StringIO()
        write_calls_csv(qs.iterator(chunk_size=2000), buffer)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="calls.csv"'
        return response
    totals = qs.aggregate(count=Count("id"), duration=Sum("duration"))
    # Costs in different currencies are never added together.
    totals["costs"] = list(
        qs.exclude(cost=None).order_by().values("currency").annotate(cost=Sum("cost"))
        .order_by("currency"))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "billing/calls.html", {
        "form": form, "page": page, "totals": totals, "query": query.urlencode(),
    })


@login_required
def call_detail(request, pk):
    """One call with the explanation of its cost."""
    call = get_object_or_404(
        Call.objects.select_related("device", "subscriber", "operator", "plan", "tariff", "route"),
        pk=pk)
    return render(request, "billing/call_detail.html", {"call": call})
