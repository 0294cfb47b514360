"""R11.1: the pages that span the whole site: the dashboard, the global search (a subscriber by name,
account or contract, a number, a call by its id) and the Settings area's index."""
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from billing.models import Call, PhoneNumber, Subscriber
from tariscope.selectors import dashboard_summary

SEARCH_LIMIT = 20


@login_required
def home(request):
    """R11.1: the dashboard: today's and this month's calls and cost, the observers, the
    latest alerts and closures, the destinations that cost the most this month."""
    return render(request, "tariscope/home.html", dashboard_summary())


@login_required
def search(request):
    """What the header's search box finds (a subscriber by name, account or contract, a
    number, a call by its id; "#id" for a call alone); straight to it when it is one."""
    query = request.GET.get("q", "").strip()[:100]
    subscribers, numbers, call = [], [], None
    if query.startswith("#") and query[1:].isdigit() and len(query) <= 19:
        # "#4711": the call of that id, and nothing else.
        call = Call.objects.filter(pk=int(query[1:])).only("pk").first()
        if call is not None:
            return redirect("call_detail", pk=call.pk)
    elif query:
        subscribers = list(Subscriber.objects.filter(
            Q(full_name__icontains=query) | Q(account_number__iexact=query)
            | Q(contract_number__iexact=query)).select_related("group")
            .order_by("full_name")[:SEARCH_LIMIT])
        numbers = list(PhoneNumber.objects.filter(dn__contains=query).select_related(
            "subscriber", "device").order_by("dn", "-valid_from")[:SEARCH_LIMIT])
        if query.isdigit() and len(query) <= 18:
            call = Call.objects.filter(pk=int(query)).only("pk").first()
    found = len(subscribers) + len(numbers) + (call is not None)
    if found == 1:
        if call is not None:
            return redirect("call_detail", pk=call.pk)
        subscriber = subscribers[0] if subscribers else numbers[0].subscriber
        return redirect("subscriber", pk=subscriber.pk)
    return render(request, "tariscope/search.html", {
        "q": query, "subscribers": subscribers, "numbers": numbers, "call": call,
        "limit": SEARCH_LIMIT, "nothing": bool(query) and not found,
        "title": _("Search"),
    })


@login_required
def settings_index(request):
    """The Settings area: what an administrator configures, each where it is edited."""
    return render(request, "tariscope/settings.html", {})
