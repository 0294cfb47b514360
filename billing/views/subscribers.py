"""R6, R7: subscribers, their numbers and personal accounts, statements."""
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from billing.forms import StatementForm
from billing.models import Subscriber
from billing.selectors import account_movements
from billing.statements import statement_build, statement_pdf

PAGE_SIZE = 50


@login_required
def subscriber_list(request):
    """R6: subscribers, searchable by name, account, contract or number."""
    query = request.GET.get("q", "").strip()[:100]
    subscribers = Subscriber.objects.select_related("group", "plan").order_by("full_name")
    if query:
        subscribers = subscribers.filter(
            Q(full_name__icontains=query) | Q(account_number__icontains=query)
            | Q(contract_number__icontains=query) | Q(numbers__dn__icontains=query)).distinct()
    page = Paginator(subscribers, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "billing/subscribers.html", {"page": page, "q": query})


@login_required
def subscriber_detail(request, pk):
    """R6, R7.2: a subscriber, its numbers, and its personal account with the movements."""
    subscriber = get_object_or_404(
        Subscriber.objects.select_related("group", "plan"), pk=pk)
    movements = account_movements(subscriber)
    return render(request, "billing/subscriber.html", {
        "subscriber": subscriber,
        "numbers": subscriber.numbers.select_related("device").order_by("-valid_from"),
        "movements": movements,
        "balance": movements[-1]["balance"] if movements else 0,
    })


@login_required
def statement(request, pk):
    """R7.3: a subscriber's statement for a period, as a page or (?format=pdf) a PDF."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    form = StatementForm(request.GET or None)
    if not form.is_valid():
        return render(request, "billing/statement.html", {"form": form, "subscriber": subscriber},
                      status=400 if request.GET else 200)
    built = statement_build(subscriber=subscriber, period_start=form.cleaned_data["date_from"],
                            period_end=form.cleaned_data["date_to"])
    if request.GET.get("format") == "pdf":
        response = HttpResponse(statement_pdf(built), content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="statement-{subscriber.account_number}-'
            f'{built.period_start:%Y%m%d}-{built.period_end:%Y%m%d}.pdf"')
        return response
    return render(request, "billing/statement.html",
                  {"form": form, "subscriber": subscriber, "statement": built,
                   "query": request.GET.urlencode()})
