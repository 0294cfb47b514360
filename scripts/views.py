"""Operator pages of the scripts (R9, R11.1): a profile's Observer scripts, the event log,
the alerts, and the mail settings with a test mail."""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.mail import EmailMessage
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from observers.models import ObserverProfile
from scripts.events import Event
from scripts.forms import BindingForm, MailSettingsForm, TestMailForm
from scripts.mail import mail_config, mail_connection
from scripts.models import Alert, MailSettings, ScriptBinding
from scripts.selectors import alert_list, binding_list, event_log_list

PAGE = 50


@login_required
def observer_scripts(request, name):
    """The original's "Observer scripts" of one profile: its bindings, and a new one."""
    profile = get_object_or_404(ObserverProfile, name=name)
    form = BindingForm(request.POST or None, profile=profile)
    if request.method == "POST":
        if not request.user.has_perm("scripts.add_scriptbinding"):
            messages.error(request, "You may not bind scripts.")
            return redirect("observer_scripts", name=name)
        if form.is_valid():
            binding = form.save()
            messages.success(request, f"{binding.script} bound to {binding.event}; it runs "
                                      "from the next event on.")
            return redirect("observer_scripts", name=name)
    return render(request, "scripts/bindings.html", {
        "profile": profile, "bindings": binding_list(profile=profile), "form": form})


@login_required
@permission_required("scripts.change_scriptbinding", raise_exception=True)
def binding_edit(request, name, pk):
    profile = get_object_or_404(ObserverProfile, name=name)
    binding = get_object_or_404(ScriptBinding, pk=pk, profile=profile)
    form = BindingForm(request.POST or None, instance=binding, profile=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"{binding.script} at {binding.event}: saved.")
        return redirect("observer_scripts", name=name)
    return render(request, "scripts/binding_edit.html",
                  {"profile": profile, "binding": binding, "form": form})


@require_POST
@permission_required("scripts.delete_scriptbinding", raise_exception=True)
def binding_delete(request, name, pk):
    binding = get_object_or_404(ScriptBinding, pk=pk, profile__name=name)
    binding.delete()  # one row; the events already queued for it are dropped when dispatched
    messages.success(request, f"{binding.script} no longer runs at {binding.event}.")
    return redirect("observer_scripts", name=name)


class EventLogFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    event = forms.ChoiceField(required=False,
                              choices=[("", "any")] + [(e.value, e.value) for e in Event])
    profile = forms.CharField(required=False, max_length=100)
    script = forms.CharField(required=False, max_length=200)
    since = forms.DateField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To",
                            widget=forms.DateInput(attrs={"type": "date"}))
    call = forms.IntegerField(required=False, min_value=1, label="Call id")
    errors = forms.BooleanField(required=False, label="Errors only")


class AlertFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    level = forms.ChoiceField(required=False, choices=[("", "any")] + Alert.Level.choices)
    script = forms.CharField(required=False, max_length=200)
    since = forms.DateField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To",
                            widget=forms.DateInput(attrs={"type": "date"}))


def _page(request, queryset):
    return Paginator(queryset, PAGE).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def event_log(request):
    filters = EventLogFilter(request.GET or None)
    entries = event_log_list()
    if filters.is_valid():
        data = filters.cleaned_data
        entries = event_log_list(search=data["q"].strip(), event=data["event"],
                                 profile=data["profile"].strip(), script=data["script"].strip(),
                                 errors_only=data["errors"], since=data["since"],
                                 until=data["until"], call_id=data["call"])
    elif filters.is_bound:
        entries = entries.none()
    return render(request, "scripts/event_log.html", {
        "filters": filters, "page": _page(request, entries),
        "query": _query_without_page(request)})


@login_required
def alerts(request):
    filters = AlertFilter(request.GET or None)
    found = alert_list()
    if filters.is_valid():
        data = filters.cleaned_data
        found = alert_list(level=data["level"], search=data["q"].strip(),
                           script=data["script"].strip(), since=data["since"],
                           until=data["until"])
    elif filters.is_bound:
        found = found.none()
    return render(request, "scripts/alerts.html", {
        "filters": filters, "page": _page(request, found),
        "query": _query_without_page(request)})


@login_required
@permission_required("scripts.change_mailsettings", raise_exception=True)
def mail_settings(request):
    row = MailSettings.objects.filter(pk=1).first() or MailSettings(pk=1)
    form = MailSettingsForm(request.POST if request.POST.get("action") == "save" else None,
                            instance=row)
    test = TestMailForm(request.POST if request.POST.get("action") == "test" else None)
    if request.method == "POST" and form.is_bound and form.is_valid():
        form.save()
        messages.success(request, "Mail settings saved; the dispatcher uses them within a few "
                                  "seconds.")
        return redirect("mail_settings")
    if request.method == "POST" and test.is_bound and test.is_valid():
        _test_mail_send(request, test.cleaned_data["to"])
        return redirect("mail_settings")
    return render(request, "scripts/mail_settings.html", {
        "form": form, "test": test, "config": mail_config(fresh=True),
        "has_password": bool(row.password)})


def _test_mail_send(request, to: str) -> None:
    """Send a test mail now, with the settings in force, and say what the server answered."""
    config = mail_config(fresh=True)
    recipients = [address.strip() for address in to.split(",") if address.strip()] or \
        config.recipients
    if not recipients:
        messages.error(request, "No recipient: enter one, or set the default recipient.")
        return
    try:
        EmailMessage("Tariscope test mail",
                     f"This test mail was sent by {request.user.get_username()} from the Mail "
                     f"settings page, through {config.describe()}.",
                     config.sender, recipients,
                     connection=mail_connection(config, timeout=15)).send()
    except Exception as exc:  # smtplib's errors, OSError, a TLS failure: say it on the page
        messages.error(request, f"The test mail to {', '.join(recipients)} was not sent: "
                                f"{type(exc).__name__}: {exc}")
        return
    messages.success(request, f"Test mail sent to {', '.join(recipients)} through "
                              f"{config.describe()}.")



