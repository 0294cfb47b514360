"""R11.1, R11.2: what a filter's search box suggests while the operator types: subscribers
(`/lookup/subscribers?q=`) and groups (`/lookup/groups?q=`), as JSON
`{"results": [{"id": 12, "label": "Ivan Petrenko · 1001"}, ...]}`, at most LOOKUP_LIMIT,
by name. The label is what the box shows and what billing.filters resolves when a text
comes without an id."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from billing.filters import group_label, groups_matching, subscriber_label, subscribers_matching

LOOKUP_LIMIT = 20
# Who may see the calls sees who made them (the calls page shows the names): either right
# opens the suggestions.
RIGHTS = ("billing.view_call", "billing.view_subscriber")


def _allowed(request):
    if not any(request.user.has_perm(right) for right in RIGHTS):
        raise PermissionDenied


def _results(items, label) -> JsonResponse:
    return JsonResponse({"results": [{"id": item.pk, "label": label(item)} for item in items]})


@require_GET
@login_required
def subscribers(request):
    """Subscribers whose name or personal account's number holds `q`."""
    _allowed(request)
    text = request.GET.get("q", "").strip()[:100]
    found = subscribers_matching(text)[:LOOKUP_LIMIT] if text else []
    return _results(found, subscriber_label)


@require_GET
@login_required
def groups(request):
    """Groups whose name holds `q`."""
    _allowed(request)
    text = request.GET.get("q", "").strip()[:100]
    found = groups_matching(text)[:LOOKUP_LIMIT] if text else []
    return _results(found, group_label)
