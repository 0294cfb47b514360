"""R11.2: the calls browser's filters, one definition for the page and its exports.

`CallFilter` declares the fields and validates them; what each filter means (whole days in
the device's zone, a group with the groups below it, a number as any part of the
extension, the dialled or the normalised number, ...) is `billing.selectors.call_list`'s,
the selector the API's calls.list and `manage.py export_calls` use too, so that the page,
the exports and the API cannot disagree about which calls a filter selects.

Subscriber and group are chosen by searching (the page's search boxes ask
/lookup/subscribers?q= and /lookup/groups?q=), never from a list of every row. The chosen
one travels as its id (`subscriber`, `group`: what links such as a subscriber's "Calls"
give); what was typed travels beside it (`subscriber_text`, `group_text`) and, when no id
came with it (a browser without scripts, a text edited after the choice), is resolved
here: one match is the choice, none or several are an error under the field.
"""
import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Call, Device, Subscriber, SubscriberGroup
from billing.selectors import call_list, subscriber_list
from tariffs.choices import CallType, Direction

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
# Between a name and what tells it apart in a search's suggestions ("Ivan Petrenko · 1001").
LABEL_SEPARATOR = " · "


def subscriber_label(subscriber) -> str:
    """A subscriber as the search offers it: the name and the personal account's number."""
    if subscriber.account_number:
        return f"{subscriber.full_name}{LABEL_SEPARATOR}{subscriber.account_number}"
    return subscriber.full_name


def group_label(group) -> str:
    """A group as the search offers it: its name and its node (names are unique per node)."""
    return f"{group.name}{LABEL_SEPARATOR}{group.node.name}"


def subscribers_matching(text: str):
    """R11.2: the subscribers a search text finds: a fragment of the name or of the
    personal account's number (billing.selectors.subscriber_list), or one suggestion's
    label as the search offered it."""
    name, _sep, account = text.rpartition(LABEL_SEPARATOR)
    if name and account:
        exact = Subscriber.objects.filter(full_name=name, account_number=account)
        if exact.exists():
            return exact.select_related("group").order_by("full_name", "id")
    return subscriber_list(filters={"q": text})


def groups_matching(text: str):
    """R11.2: the groups a search text finds: a fragment of the name, or one suggestion's
    label ("Support · Kyiv")."""
    groups = SubscriberGroup.objects.select_related("node").order_by("name", "node__name", "id")
    name, _sep, node = text.rpartition(LABEL_SEPARATOR)
    if name and node:
        exact = groups.filter(name=name, node__name=node)
        if exact.exists():
            return exact
    return groups.filter(Q(name__icontains=text))


def _choice(values, empty_label):
    # The labels are the pure module's English words, translated where they are shown.
    return [("", empty_label), *((value, _(label)) for value, label in values)]


class _CallFilterForm(forms.Form):
    """The period's check and the searches' resolution, over CallFilter's fields."""

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The period ends before it starts."))
        low, high = data.get("cost_min"), data.get("cost_max")
        if low is not None and high is not None and low > high:
            self.add_error("cost_max", _("The highest cost is below the lowest."))
        self._resolve(data, "subscriber", subscriber_label, subscribers_matching,
                      none=_("No subscriber matches “%(text)s”."),
                      several=_("More than one subscriber matches “%(text)s”: choose one "
                                "from the list."))
        self._resolve(data, "group", group_label, groups_matching,
                      none=_("No group matches “%(text)s”."),
                      several=_("More than one group matches “%(text)s”: choose one from "
                                "the list."))
        return data

    def _resolve(self, data, name, label, matching, *, none, several):
        text_name = f"{name}_text"
        if name in self.errors:
            return
        text = (data.get(text_name) or "").strip()
        chosen = data.get(name)
        if chosen is not None and (not text or text == label(chosen)):
            data[text_name] = label(chosen)
            return
        if not text:
            return
        found = list(matching(text)[:2])
        if len(found) == 1:
            data[name] = found[0]
            data[text_name] = label(found[0])
        else:
            data[name] = None
            self.add_error(text_name, (several if found else none) % {"text": text})


class CallFilter(django_filters.FilterSet):
    """R11.2: the calls browser's filters (period, device, subscriber, group, number, call
    type, direction, cost range, unknown numbers), for the page and its exports."""

    date_from = django_filters.DateFilter(label=_("From"), widget=_DATE)
    date_to = django_filters.DateFilter(label=_("To (inclusive)"), widget=_DATE)
    device = django_filters.ModelChoiceFilter(
        label=_("Device"), queryset=Device.objects.order_by("name"), empty_label=_("any device"))
    subscriber = django_filters.ModelChoiceFilter(
        label=_("Subscriber"), queryset=Subscriber.objects.all(), widget=forms.HiddenInput)
    subscriber_text = django_filters.CharFilter(label=_("Subscriber"), max_length=300)
    group = django_filters.ModelChoiceFilter(
        label=_("Group"), queryset=SubscriberGroup.objects.select_related("node"),
        widget=forms.HiddenInput)
    group_text = django_filters.CharFilter(label=_("Group"), max_length=300)
    number = django_filters.CharFilter(label=_("Number"), max_length=64)
    call_type = django_filters.TypedChoiceFilter(
        label=_("Call type"), choices=_choice(CallType.choices, _("any type")), coerce=int,
        empty_value=None)
    direction = django_filters.TypedChoiceFilter(
        label=_("Direction"), choices=_choice(Direction.choices, _("any direction")),
        coerce=int, empty_value=None)
    cost_min = django_filters.NumberFilter(label=_("Cost from"), min_value=0, decimal_places=4)
    cost_max = django_filters.NumberFilter(label=_("Cost to"), min_value=0, decimal_places=4)
    unknown = django_filters.BooleanFilter(label=_("Unknown numbers only"),
                                           widget=forms.CheckboxInput)

    class Meta:
        model = Call
        fields = []
        form = _CallFilterForm

    def __init__(self, data=None, *args, **kwargs):
        kwargs.setdefault("queryset", call_list())
        super().__init__(data, *args, **kwargs)

    def selector_filters(self) -> dict:
        """The valid filters as billing.selectors.call_list takes them; the dates are whole
        days in each call's device's zone, as the page shows the times."""
        data = self.form.cleaned_data
        return {
            "day_from": data.get("date_from"), "day_to": data.get("date_to"),
            "device": data["device"].pk if data.get("device") else None,
            "subscriber": data["subscriber"].pk if data.get("subscriber") else None,
            "group": data["group"].pk if data.get("group") else None,
            "number": data.get("number") or "",
            "call_type": data.get("call_type"), "direction": data.get("direction"),
            "cost_min": data.get("cost_min"), "cost_max": data.get("cost_max"),
            "unknown": bool(data.get("unknown")),
        }

    def filter_queryset(self, queryset):
        """The selector's calls for valid filters (see the module's docstring); none for
        invalid ones, so that a wrong filter never shows, totals or exports every call."""
        if not self.form.is_valid():
            return queryset.none()
        return call_list(filters=self.selector_filters())

    def search_values(self) -> dict:
        """What the page's subscriber and group searches show: {name: (id, text)}, the
        resolved choice when the filters are valid, else what was sent."""
        valid = self.is_bound and self.form.is_valid()
        values = {}
        for name in ("subscriber", "group"):
            if valid:
                chosen = self.form.cleaned_data.get(name)
                values[name] = (chosen.pk if chosen else "",
                                self.form.cleaned_data.get(f"{name}_text") or "")
            else:
                data = self.data or {}
                values[name] = (data.get(name, ""), data.get(f"{name}_text", ""))
        return values
