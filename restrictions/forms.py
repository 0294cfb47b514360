"""R8.1, R8.2, R8.6, R11.1: the forms of the Restrictions pages. They parse what the
operator typed; the rules of a limit or a code are the services' (restrictions.services),
which the site configuration file calls too, and their errors are shown on these forms.

A subscriber or a group is typed, not picked from a list of every row (there are
thousands): the field suggests matches as one types (the lookup pages) and accepts a
suggestion ("name · account number", "group · node"), an account number, or a name that
only one subscriber has."""
from django import forms
from django.urls import reverse
from django.utils.html import format_html

from billing.filters import LABEL_SEPARATOR as SEPARATOR
from billing.filters import group_label, subscriber_label
from billing.models import Device, Subscriber, SubscriberGroup
from restrictions.models import Cause, ControlRule
from tariffs.choices import CallType

# Calls that a limit counts: outgoing ones (billing.MonthUsage), of these types.
LIMIT_CALL_TYPES = [(t.value, t.label) for t in CallType
                    if t not in (CallType.INTERNAL, CallType.INCOMING)]




class LookupInput(forms.TextInput):
    """A text input whose suggestions come from a lookup page as the operator types (the
    script of restrictions/lookup_script.html fills its datalist); without the script it is
    a plain text field."""

    def __init__(self, lookup: str, attrs=None):
        super().__init__(attrs={"autocomplete": "off", "size": 40, **(attrs or {})})
        self.lookup = lookup

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_attrs = context["widget"]["attrs"]
        widget_attrs["list"] = f"{widget_attrs.get('id') or name}-suggestions"
        widget_attrs["data-lookup"] = reverse(self.lookup)
        return context

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        list_id = f"{(attrs or {}).get('id') or name}-suggestions"
        return format_html("{}<datalist id=\"{}\"></datalist>", html, list_id)


class SubscriberField(forms.CharField):
    """A subscriber, typed: a suggestion, an account number, or a name only one has."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", LookupInput("restrictions_lookup_subscribers"))
        kwargs.setdefault("help_text", "Type part of a name, an account or a number and pick "
                                       "a suggestion.")
        super().__init__(max_length=400, **kwargs)

    def prepare_value(self, value):
        return subscriber_label(value) if isinstance(value, Subscriber) else value

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return None
        account = text.rsplit(SEPARATOR, 1)[-1].strip()
        found = Subscriber.objects.filter(account_number=account).first()
        if found is not None:
            return found
        named = list(Subscriber.objects.filter(full_name__iexact=text)[:2])
        if len(named) == 1:
            return named[0]
        if named:
            raise forms.ValidationError(
                f"More than one subscriber is called “{text}”: pick one of the suggestions "
                "(name · account number).")
        raise forms.ValidationError(f"No subscriber “{text}”: type part of a name, an account "
                                    "or a number and pick a suggestion.")


class GroupField(forms.CharField):
    """A group, typed: a suggestion ("group · node") or a name only one group has."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", LookupInput("restrictions_lookup_groups"))
        kwargs.setdefault("help_text", "Type part of the group's name and pick a suggestion.")
        super().__init__(max_length=400, **kwargs)

    def prepare_value(self, value):
        return group_label(value) if isinstance(value, SubscriberGroup) else value

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return None
        if SEPARATOR in text:
            name, node = (part.strip() for part in text.rsplit(SEPARATOR, 1))
            found = SubscriberGroup.objects.filter(name=name, node__name=node).first()
            if found is not None:
                return found
        named = list(SubscriberGroup.objects.filter(name__iexact=text)[:2])
        if len(named) == 1:
            return named[0]
        if named:
            raise forms.ValidationError(
                f"Groups of more than one node are called “{text}”: pick one of the "
                "suggestions (group · node).")
        raise forms.ValidationError(f"No group “{text}”: type part of its name and pick a "
                                    "suggestion.")


class LimitForm(forms.Form):
    """R8.1: a monthly limit. The field names are the service's (limit_create), so that its
    errors land on the fields they are about."""

    subscriber = SubscriberField(required=False)
    group = GroupField(required=False, help_text="Or a group: the limit counts its whole "
                                                 "subtree. Type part of its name.")
    money = forms.DecimalField(required=False, max_digits=14, decimal_places=2,
                               label="Money a month", help_text="With its currency; or seconds.")
    currency = forms.CharField(required=False, max_length=3,
                               widget=forms.TextInput(attrs={"size": 4}),
                               help_text="ISO 4217, as UAH: the calls' currency.")
    seconds = forms.IntegerField(required=False, label="Seconds a month",
                                 help_text="Talk time, instead of money: 3600 is an hour.")
    call_types = forms.TypedMultipleChoiceField(
        required=False, choices=LIMIT_CALL_TYPES, coerce=int,
        widget=forms.CheckboxSelectMultiple, help_text="None ticked: every outgoing call.")
    warn_percent = forms.IntegerField(required=False, label="Warn at (%)",
                                      help_text="A mail and an event when this much is used; "
                                                "1 to 99, or empty for none.")
    enabled = forms.BooleanField(required=False, initial=True)

    @classmethod
    def initial_of(cls, limit) -> dict:
        return {"subscriber": limit.subscriber, "group": limit.group, "money": limit.money,
                "currency": limit.currency, "seconds": limit.seconds,
                "call_types": limit.call_types, "warn_percent": limit.warn_percent,
                "enabled": limit.enabled}

    def fields_for_service(self) -> dict:
        return dict(self.cleaned_data)


class CloseForm(forms.Form):
    """R8.2: close a subscriber, or a group and its subtree, by hand."""

    subscriber = SubscriberField(required=False)
    group = GroupField(required=False, help_text="Or a group: everyone in it and in the "
                                                 "groups below is closed.")
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 60}),
                             help_text="Kept in the history and passed to the scripts.")

    def clean(self):
        data = super().clean()
        if "subscriber" in data and "group" in data:
            if data["subscriber"] is None and data["group"] is None:
                self.add_error("subscriber", "Close a subscriber or a group: name one.")
            elif data["subscriber"] is not None and data["group"] is not None:
                self.add_error("group", "Close a subscriber or a group, not both.")
        return data


class ReopenForm(forms.Form):
    """R8.2: reopen a closure by hand; the reason goes into the history."""

    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 40}),
                             error_messages={"required": "Say why it is reopened."})


class AuthCodeForm(forms.Form):
    """R8.6: an authorization code. A stored code is never shown: left empty on an edit,
    it is kept."""

    code = forms.CharField(max_length=16, required=False,
                           widget=forms.PasswordInput(render_value=False, attrs={
                               "autocomplete": "new-password", "inputmode": "numeric"}),
                           help_text="Digits only.")
    subscriber = SubscriberField(help_text="Who pays the calls dialled with this code. Type "
                                           "part of a name, an account or a number.")
    description = forms.CharField(max_length=200, required=False)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            self.fields["code"].help_text = "Digits only. Left empty: the stored code is kept."

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        if not code and not self.editing:
            raise forms.ValidationError("Enter the code (digits).")
        return code

    def fields_for_service(self) -> dict:
        data = dict(self.cleaned_data)
        if not data["code"]:
            data.pop("code")
        return data


class HistoryFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Subscriber or group")
    cause = forms.ChoiceField(required=False, choices=[("", "any")] + Cause.choices)


class ActionFilter(forms.Form):
    device = forms.ModelChoiceField(required=False, queryset=Device.objects.order_by("name"),
                                    empty_label="any")
    rule = forms.ChoiceField(required=False, choices=[("", "any")] + ControlRule.choices)


class CodeFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Subscriber")
