"""R11.3: a report's filters, for the page and (the same checks) the command.

A group or a subscriber is typed, not picked from a list of every row: the field asks the
lookup pages for suggestions as one types (htmx fills its datalist) and accepts a
suggestion ("Sales · Kyiv", "Ivan Petrenko · 12"), an account number, or a name only one
group or subscriber has. (restrictions.forms has the same fields; it stands above reports,
so these cannot be shared from there.)"""
from django import forms
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.filters import LABEL_SEPARATOR as SEPARATOR
from billing.filters import group_label, subscriber_label
from billing.models import Device, Node, Subscriber, SubscriberGroup
from reports.catalogue import ReportKind
from reports.selectors import DEFAULT_TOP
from reports.tables import CALL_TYPE_LABELS, DIRECTION_LABELS
from tariffs.choices import CallType, Direction

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TOP_MAX = 1000




class LookupInput(forms.TextInput):
    """A text input whose datalist htmx fills from `lookup` as the operator types."""

    def __init__(self, lookup, attrs=None):
        super().__init__(attrs={"autocomplete": "off", "size": 28, **(attrs or {})})
        self.lookup = lookup

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget = context["widget"]["attrs"]
        list_id = f"{widget.get('id') or name}-suggestions"
        widget.update({"list": list_id, "hx-get": str(self.lookup),
                       "hx-trigger": "input changed delay:250ms", "hx-target": f"#{list_id}",
                       "hx-swap": "innerHTML", "hx-sync": "this:replace"})
        return context

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        list_id = f"{(attrs or {}).get('id') or name}-suggestions"
        return format_html('{}<datalist id="{}"></datalist>', html, list_id)


class GroupField(forms.CharField):
    """A group, typed: "name · node", or a name that only one node's tree has."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", LookupInput(reverse_lazy("report_lookup_groups")))
        super().__init__(max_length=300, **kwargs)

    def prepare_value(self, value):
        return group_label(value) if isinstance(value, SubscriberGroup) else value

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return None
        name, _sep, node = text.partition(SEPARATOR)
        found = SubscriberGroup.objects.filter(name__iexact=name.strip()).select_related("node")
        if node:
            found = found.filter(node__name__iexact=node.strip())
        found = list(found[:2])
        if len(found) == 1:
            return found[0]
        if found:
            raise forms.ValidationError(
                _("Groups of this name are in several nodes: pick one from the suggestions."))
        raise forms.ValidationError(_("No group %(name)s.") % {"name": text})


class SubscriberField(forms.CharField):
    """A subscriber, typed: "name · account", an account number, or a name only one has."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", LookupInput(reverse_lazy("report_lookup_subscribers")))
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
        named = list(Subscriber.objects.filter(full_name__iexact=text.strip())[:2])
        if len(named) == 1:
            return named[0]
        if named:
            raise forms.ValidationError(
                _("Several subscribers have this name: pick one from the suggestions."))
        raise forms.ValidationError(_("No subscriber %(name)s.") % {"name": text})


class ReportFilterForm(forms.Form):
    """R11.3: the period (whole days on each device's calendar) and what to count."""

    date_from = forms.DateField(label=_("From"), widget=_DATE)
    date_to = forms.DateField(label=_("To (inclusive)"), widget=_DATE)
    node = forms.ModelChoiceField(Node.objects.all(), required=False, label=_("Node"),
                                  empty_label=_("any node"))
    device = forms.ModelChoiceField(Device.objects.all(), required=False, label=_("Device"),
                                    empty_label=_("any device"))
    group = GroupField(required=False, label=_("Group (with the groups below it)"))
    subscriber = SubscriberField(required=False, label=_("Subscriber"))
    call_type = forms.TypedChoiceField(
        label=_("Call type"), coerce=int, required=False, empty_value=None,
        choices=[("", _("any type")), *((t.value, CALL_TYPE_LABELS[t.label]) for t in CallType)])
    direction = forms.TypedChoiceField(
        label=_("Direction"), coerce=int, required=False, empty_value=None,
        choices=[("", _("any direction")),
                 *((d.value, DIRECTION_LABELS[d.label]) for d in Direction)])
    top = forms.IntegerField(label=_("How many"), min_value=1, max_value=TOP_MAX,
                             required=False, initial=DEFAULT_TOP)

    def __init__(self, *args, kind: ReportKind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if not kind.uses_top:
            del self.fields["top"]
        if not kind.over_calls:
            for name in ("device", "call_type", "direction"):
                del self.fields[name]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The period ends before it starts."))
        return data

    def filters(self) -> dict:
        """The selectors' filters (reports.selectors)."""
        data = self.cleaned_data
        return {"day_from": data["date_from"], "day_to": data["date_to"],
                **{key: data.get(key) for key in ("node", "device", "group", "subscriber",
                                                  "call_type", "direction")},
                "top": data.get("top") or DEFAULT_TOP}

    def describe(self) -> list[str]:
        """The filters as lines of text, for the XLSX, the PDF and the job's page."""
        data = self.cleaned_data
        lines = [gettext("Period: %(start)s – %(end)s (each device's calendar)")
                 % {"start": data["date_from"].isoformat(), "end": data["date_to"].isoformat()}]
        for name in ("node", "device", "group", "subscriber", "call_type", "direction", "top"):
            field, value = self.fields.get(name), data.get(name)
            if field is None or value in (None, ""):
                continue
            if name in ("call_type", "direction"):
                value = dict(field.choices).get(value, value)
            elif name == "group":
                value = group_label(value)
            elif name == "subscriber":
                value = subscriber_label(value)
            lines.append(f"{field.label}: {value}")
        return lines


def default_period() -> dict:
    """This month so far (the server's calendar), and the top 10: what a report opens with."""
    today = timezone.localdate()
    return {"date_from": today.replace(day=1).isoformat(), "date_to": today.isoformat(),
            "top": str(DEFAULT_TOP)}
