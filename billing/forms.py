"""Input forms of the billing pages."""
import re
import zoneinfo
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from billing.filters import group_label, groups_matching
from billing.models import (
    AuthCodePosition,
    Device,
    DeviceType,
    Node,
    PaymentType,
    RouteKind,
    Subscriber,
    SubscriberGroup,
    SubscriberType,
)
from billing.subscribers import SUBSCRIBER_FIELDS
from tariffs.models import Operator, TariffPlan

_DATE = forms.DateInput(attrs={"type": "date"})


class StatementForm(forms.Form):
    """R7.3: the period of a statement."""

    date_from = forms.DateField(label=_("From"), widget=_DATE)
    date_to = forms.DateField(label=_("To (inclusive)"), widget=_DATE)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The period ends before it starts."))
        return data


# -- the operator's forms (R11.1). They parse what was typed; the rules are the services'
# (billing.subscribers, billing.accounts, billing.directory), whose refusals the views put
# on the fields they are about. Field names are the services' keyword arguments.

class LookupInput(forms.TextInput):
    """A text box whose suggestions come from a lookup page (billing/views/lookups.py) as
    the operator types: the script of billing/subscribers/lookup_script.html fills its
    datalist. Without the script it is a plain text box."""

    def __init__(self, lookup: str, attrs=None):
        super().__init__(attrs={"autocomplete": "off", "size": 40, **(attrs or {})})
        self.lookup = lookup

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_attrs = context["widget"]["attrs"]
        widget_attrs["list"] = f"{widget_attrs.get('id') or name}-options"
        widget_attrs["data-lookup"] = reverse(self.lookup)
        widget_attrs["placeholder"] = _("Type to search")
        return context

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        return format_html('{}<datalist id="{}-options"></datalist>', html,
                           (attrs or {}).get("id") or name)


class GroupSearchField(forms.CharField):
    """A group, typed: a suggestion ("Sales · Kyiv", billing.filters.group_label) or a
    name only one group has; never a list of every group."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", LookupInput("lookup_groups"))
        kwargs.setdefault("help_text", _("Type part of the name and pick a suggestion."))
        super().__init__(max_length=400, **kwargs)

    def prepare_value(self, value):
        return group_label(value) if isinstance(value, SubscriberGroup) else value

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return None
        found = list(groups_matching(text)[:2])
        if len(found) == 1:
            return found[0]
        if found:
            raise forms.ValidationError(
                _("More than one group matches “%(text)s”: pick one of the suggestions "
                  "(group · node).") % {"text": text})
        raise forms.ValidationError(_("No group matches “%(text)s”.") % {"text": text})


class SubscriberForm(forms.Form):
    """R6.1: every field of a subscriber."""

    full_name = forms.CharField(label=_("Full name"), max_length=300)
    group = GroupSearchField(label=_("Group"), required=False)
    type = forms.TypedChoiceField(label=_("Type"), choices=SubscriberType.choices, coerce=int,
                                  initial=SubscriberType.INDIVIDUAL)
    connection_date = forms.DateField(label=_("Connection date"), required=False, widget=_DATE)
    contract_number = forms.CharField(label=_("Contract number"), max_length=100,
                                      required=False)
    contract_date = forms.DateField(label=_("Contract date"), required=False, widget=_DATE)
    account_number = forms.CharField(
        label=_("Personal account number"), max_length=100, required=False,
        help_text=_("Left empty, it is the subscriber's id."))
    personal_code = forms.CharField(label=_("Personal tax code"), max_length=50,
                                    required=False)
    edrpou = forms.CharField(label=_("EDRPOU code"), max_length=20, required=False)
    tax_code = forms.CharField(label=_("VAT tax code"), max_length=50, required=False)
    bank_code = forms.CharField(label=_("Bank code"), max_length=20, required=False)
    bank_name = forms.CharField(label=_("Bank name"), max_length=200, required=False)
    bank_account = forms.CharField(label=_("Bank account"), max_length=50, required=False)
    plan = forms.ModelChoiceField(TariffPlan.objects.order_by("name"), label=_("Tariff plan"),
                                  required=False, empty_label=_("the device's plan"))
    email = forms.EmailField(label=_("E-mail"), required=False,
                             help_text=_("Where the subscriber's own notices go."))

    @staticmethod
    def initial_of(subscriber: Subscriber) -> dict:
        return {name: getattr(subscriber, name) for name in SUBSCRIBER_FIELDS}


class NumberForm(forms.Form):
    """R6.2: a number given to a subscriber for a period."""

    device = forms.ModelChoiceField(Device.objects.order_by("name"), label=_("Device"))
    dn = forms.CharField(label=_("Number"), max_length=32)
    valid_from = forms.DateField(label=_("Valid from"), widget=_DATE)
    valid_to = forms.DateField(
        label=_("Valid to (last day)"), required=False, widget=_DATE,
        help_text=_("Empty while the subscriber holds it; if someone is given the number "
                    "later, this holding ends the day before."))
    description = forms.CharField(label=_("Description"), max_length=200, required=False)


class NumberEditForm(forms.Form):
    """R6.2: a number's description and its last day (a date ends the holding)."""

    valid_to = forms.DateField(label=_("Valid to (last day)"), required=False, widget=_DATE,
                               help_text=_("Empty while the subscriber holds it."))
    description = forms.CharField(label=_("Description"), max_length=200, required=False)


class PaymentForm(forms.Form):
    """R7.2: a payment into the personal account."""

    day = forms.DateField(label=_("Date"), widget=_DATE)
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("0.01"), max_digits=14,
                                decimal_places=2)
    type = forms.TypedChoiceField(label=_("Type"), choices=PaymentType.choices, coerce=int,
                                  initial=PaymentType.UNSPECIFIED)
    bank = forms.CharField(label=_("Bank"), max_length=200, required=False)


class RecurringServiceForm(forms.Form):
    """R7.1: a monthly fee of one subscriber."""

    name = forms.CharField(label=_("Service"), max_length=200,
                           help_text=_("As the personal account shows it."))
    amount = forms.DecimalField(label=_("Amount per month"), min_value=0, max_digits=14,
                                decimal_places=2)
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="UAH",
                               help_text=_("ISO 4217, as UAH."))
    valid_from = forms.DateField(label=_("Valid from"), widget=_DATE)
    valid_to = forms.DateField(label=_("Valid to (last day)"), required=False, widget=_DATE)

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()


class EndForm(forms.Form):
    """The last day of something that holds until ended (a monthly fee)."""

    valid_to = forms.DateField(label=_("Last day"), widget=_DATE)


# -- nodes, devices, routes, groups, holidays (R1, R3.1, R4.2)

class NodeForm(forms.Form):
    """R1.1: a node."""

    name = forms.CharField(label=_("Name"), max_length=100)
    country = forms.CharField(
        label=_("Country"), max_length=2, required=False,
        help_text=_("ISO 3166 code, as UA: its public holidays are rated as holidays."))
    description = forms.CharField(label=_("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))

    def clean_country(self):
        country = self.cleaned_data["country"].strip().upper()
        if country and not (len(country) == 2 and country.isalpha() and country.isascii()):
            raise forms.ValidationError(_("An ISO 3166 code: two letters, as UA."))
        return country


_DIGITS = RegexValidator(r"^[0-9]*$", _("Digits only."))


def _digits(label, max_length, **kwargs):
    return forms.CharField(label=label, max_length=max_length, required=False,
                           validators=[_DIGITS], **kwargs)


class TimeZoneInput(forms.TextInput):
    """A text input that suggests the time zones the system knows (a datalist)."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"list": "timezones", "autocomplete": "off", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None):
        options = format_html_join("", '<option value="{}">', (
            (zone,) for zone in sorted(zoneinfo.available_timezones())))
        return format_html('{}<datalist id="timezones">{}</datalist>',
                           super().render(name, value, attrs, renderer), options)


class DeviceForm(forms.Form):
    """R1.1, R3.1: a device, its time zone and dial plan, its default carrier and plan."""

    node = forms.ModelChoiceField(Node.objects.order_by("name"), label=_("Node"))
    name = forms.CharField(label=_("Name"), max_length=100)
    type = forms.ChoiceField(label=_("Type"), choices=DeviceType.choices,
                             help_text=_("Selects how its call records are read."))
    timezone = forms.CharField(label=_("Time zone"), max_length=64, initial="UTC",
                               widget=TimeZoneInput(),
                               help_text=_("Region/City, as Europe/Kyiv: call times are shown "
                                           "in it and days are cut in it."))
    access_code = _digits(_("Access code"), 8, help_text=_("Outside-line prefix to strip, "
                                                            "as 9."))
    national_prefix = _digits(_("National prefix"), 4, initial="0")
    international_prefix = _digits(_("International prefix"), 4, initial="00")
    country_code = _digits(_("Country code"), 4, help_text=_("As 380."))
    area_code = _digits(_("Area code"), 8, help_text=_("The local area code, as 44."))
    extension_length = forms.IntegerField(
        label=_("Extension length"), required=False, min_value=1, max_value=32,
        help_text=_("Internal numbers have this many digits."))
    extension_pattern = forms.CharField(
        label=_("Extension pattern"), max_length=200, required=False,
        help_text=_("A regular expression for internal numbers, instead of the length."))
    service_numbers = forms.CharField(
        label=_("Service numbers"), max_length=200, required=False,
        initial="101,102,103,104,112,911",
        help_text=_("Emergency and service numbers, separated by commas."))
    auth_code_position = forms.ChoiceField(
        label=_("Authorization code"), required=False, choices=AuthCodePosition.choices)
    auth_code_length = forms.IntegerField(label=_("Authorization code length"), min_value=0,
                                          max_value=16, initial=0, required=False)
    default_operator = forms.ModelChoiceField(
        Operator.objects.order_by("name"), label=_("Default operator"), required=False,
        help_text=_("Rates calls that left through no known route."))
    default_plan = forms.ModelChoiceField(
        TariffPlan.objects.order_by("name"), label=_("Default tariff plan"), required=False,
        help_text=_("For subscribers without a plan of their own."))

    def clean_extension_pattern(self):
        pattern = self.cleaned_data["extension_pattern"]
        try:
            re.compile(pattern)
        except re.error as exc:
            raise forms.ValidationError(_("Not a regular expression: %(error)s.")
                                        % {"error": exc}) from None
        return pattern

    def clean_service_numbers(self):
        numbers = [n.strip() for n in self.cleaned_data["service_numbers"].split(",")
                   if n.strip()]
        wrong = [n for n in numbers if not n.isdigit()]
        if wrong:
            raise forms.ValidationError(_("Not a number: %(numbers)s.")
                                        % {"numbers": ", ".join(wrong)})
        return ",".join(numbers)

    def clean_auth_code_length(self):
        return self.cleaned_data["auth_code_length"] or 0

    def clean(self):
        data = super().clean()
        if data.get("auth_code_position") and not data.get("auth_code_length"):
            self.add_error("auth_code_length", _("How many digits users dial as their code."))
        return data


class RouteForm(forms.Form):
    """R1.2: a route or gateway of a device and the carrier it reaches."""

    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("As the PBX names it in its call records."))
    kind = forms.ChoiceField(label=_("Kind"), choices=RouteKind.choices)
    operator = forms.ModelChoiceField(Operator.objects.order_by("name"), label=_("Operator"))


class GroupForm(forms.Form):
    """R1.3: a group in its node's tree."""

    node = forms.ModelChoiceField(Node.objects.order_by("name"), label=_("Node"))
    name = forms.CharField(label=_("Name"), max_length=200)
    parent = GroupSearchField(
        label=_("Parent group"), required=False,
        help_text=_("A group of the same node; empty: at the node's root. Type part of the "
                    "name and pick a suggestion."))

    def __init__(self, *args, group: SubscriberGroup | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if group is not None:  # a group stays on the node it was made on
            del self.fields["node"]


class HolidayForm(forms.Form):
    """R4.2: a holiday of a node."""

    node = forms.ModelChoiceField(Node.objects.order_by("name"), label=_("Node"))
    date = forms.DateField(label=_("Date"), widget=_DATE)
    name = forms.CharField(label=_("Name"), max_length=100, required=False)
