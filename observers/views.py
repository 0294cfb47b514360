"""Operator pages for observer profiles: state, start/stop, log, rejects (R2.5, R2.7); new
and edit (R2.1, R2.2)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from observers.forms import ObserverProfileForm, source_keys_help
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


def _profile_form_page(request, form, name):
    # `name` is the stored one: an invalid form has already put the typed name on the row.
    return render(request, "observers/edit.html",
                  {"form": form, "name": name, "sources": source_keys_help()})


# The form saves the one row it edits (ModelForm.save): no other table changes, so no
# service wraps it. The supervisor notices the saved row at its next check.
@login_required
@permission_required("observers.add_observerprofile", raise_exception=True)
def observer_new(request):
    form = ObserverProfileForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        profile = form.save()
        messages.success(request, f"{profile.name}: created."
                         + (" The collector starts within a few seconds." if profile.enabled
                            and not profile.remote else ""))
        return redirect("observer_list")
    return _profile_form_page(request, form, None)


@login_required
@permission_required("observers.change_observerprofile", raise_exception=True)
def observer_edit(request, name):
    profile = get_object_or_404(ObserverProfile, name=name)
    form = ObserverProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        profile = form.save()
        restart = " A running collector restarts with them within a few seconds." \
            if not profile.remote else " Restart the remote observer to use them."
        messages.success(request, f"{profile.name}: settings saved." + restart)
        return redirect("observer_list")
    return _profile_form_page(request, form, name)
