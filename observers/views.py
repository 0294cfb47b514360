"""Operator pages for observer profiles: state, start/stop, log, rejects (R2.5, R2.7)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from observers.models import ObserverProfile
from observers.selectors import profile_list, profile_log_tail, reject_list
from observers.services import profile_issue_token, profile_set_enabled


@login_required
def observer_list(request):
    return render(request, "observers/list.html", {"profiles": profile_list()})


@require_POST
@permission_required("observers.change_observerprofile", raise_exception=True)
def observer_toggle(request, name, action):
    if action not in ("start", "stop"):
        raise Http404(f"no action {action!r}")
    profile = get_object_or_404(ObserverProfile, name=name)
    if profile.remote:
        messages.error(request, f"{name} runs on another host: start and stop it there.")
    else:
        profile_set_enabled(profile=profile, enabled=(action == "start"))
        messages.success(request, f"{name}: {'starting' if action == 'start' else 'stopping'}; "
                                  "the state changes within a few seconds.")
    return redirect("observer_list")


@require_POST
@permission_required("observers.change_observerprofile", raise_exception=True)
def observer_token(request, name):
    """R2.6: issue (or replace) a remote profile's token, shown once."""
    profile = get_object_or_404(ObserverProfile, name=name, remote=True)
    token = profile_issue_token(profile=profile)
    return render(request, "observers/token.html", {"profile": profile, "token": token})


@login_required
def observer_log(request, name):
    profile = get_object_or_404(ObserverProfile, name=name)
    return render(request, "observers/log.html",
                  {"profile": profile, "lines": profile_log_tail(profile)})


@login_required
def observer_rejects(request, name):
    profile = get_object_or_404(ObserverProfile, name=name)
    search = request.GET.get("q", "").strip()[:200]
    page = Paginator(reject_list(profile=profile, search=search), 50).get_page(
        request.GET.get("page"))
    return render(request, "observers/rejects.html",
                  {"profile": profile, "page": page, "search": search})
