"""Input forms of the billing pages."""

from django import forms

from billing.models import Device, Subscriber, SubscriberGroup
from tariffs.choices import CallType, Direction

_DATE = forms.DateInput(attrs={"type": "date"})


class CallFilterForm(forms.Form):
    """R11.2: the calls browser's filters."""

    date_from = forms.DateField(required=False, label="From", widget=_DATE)
    date_to = forms.DateField(required=False, label="To (inclusive)", widget=_DATE)
    device = forms.ModelChoiceField(Device.objects.all(), required=False)
    group = forms.ModelChoiceField(SubscriberGroup.objects.all(), required=False)
    subscriber = forms.ModelChoiceField(Subscriber.objects.all(), required=False)
    number = forms.CharField(required=False, max_length=64)
    call_type = forms.TypedChoiceField(choices=[("", "any type"), *CallType.choices],
                                       coerce=int, required=False, empty_value=None)
    direction = forms.TypedChoiceField(choices=[("", "any direction"), *Direction.choices],
                                       coerce=int, required=False, empty_value=None)
    cost_min = forms.DecimalField(required=False, min_value=0, decimal_places=4)
    cost_max = forms.DecimalField(required=False, min_value=0, decimal_places=4)
    unknown = forms.BooleanField(required=False, label="Unknown numbers only")

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The period ends before it starts.")
        return data

    def filters(self) -> dict:
        """The selector's filters; dates are whole days in each call's device's time zone,
        as the page shows the times."""
        data = dict(self.cleaned_data)
        data["day_from"] = data.pop("date_from", None)
        data["day_to"] = data.pop("date_to", None)
        return data


class StatementForm(forms.Form):
    """R7.3: the period of a statement."""

    date_from = forms.DateField(label="From", widget=_DATE)
    date_to = forms.DateField(label="To (inclusive)", widget=_DATE)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The period ends before it starts.")
        return data
