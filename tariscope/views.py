"""R11.1: the pages that span the whole site: the global search (a subscriber by name,
account or contract, a number, a call by its id) and the Settings area's index."""
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from billing.models import Call, PhoneNumber, Subscriber

SEARCH_LIMIT = 20


@login_required
def search(request):
    """What the header's search box finds; straight to it when it is one thing."""
    query = request.GET.get("q", "").strip()[:100]
    subscribers, numbers, call = [], [], None
    if query:
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
