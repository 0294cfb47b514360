"""Admin of operators, plans, tariffs, prices, codes and time bands (R5.1, R5.4, R11.1).

Every write here to an operator's codes, tariffs, prices or bands ends with
`operator_rates_changed`, so that compiled tariff indexes cached by other processes are
rebuilt (see docs/tariffs.md).
"""
from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse

from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice, TimeBand
from tariffs.selectors import operator_copy_name
from tariffs.services import (
    operator_copy,
    operator_rates_changed,
    tariffs_delete_valid_from,
    tariffs_move_valid_from,
    tariffs_set_account_description,
)


class RatesChangedMixin:
    """Saves and deletes (one row, a selection, inline rows) bump the rates version of
    every operator they touch: the row's operator before and after the change."""

    def _stored_operator_ids(self, queryset) -> set[int]:
        return set(queryset.values_list("operator_id", flat=True))

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = (self._stored_operator_ids(type(obj).objects.filter(pk=obj.pk))
                      if change else set())
            super().save_model(request, obj, form, change)
            operator_rates_changed(operator_ids=before | {obj.operator_id})

    def save_formset(self, request, form, formset, change):
        with transaction.atomic():
            super().save_formset(request, form, formset, change)
            if formset.has_changed():  # inline prices belong to the parent's operator
                operator_rates_changed(operator_ids=[form.instance.operator_id])

    def delete_model(self, request, obj):
        with transaction.atomic():
            operator_id = obj.operator_id
            super().delete_model(request, obj)
            operator_rates_changed(operator_ids=[operator_id])

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            operator_ids = self._stored_operator_ids(queryset)
            super().delete_queryset(request, queryset)
            operator_rates_changed(operator_ids=operator_ids)


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ("name", "currency", "rates_version")
    readonly_fields = ("rates_version",)
    search_fields = ("name",)
    actions = ["copy_operator"]

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if change:
                # Never write back the rates_version read with the form: another process
                # may have bumped it since.
                obj.save(update_fields=[f.name for f in Operator._meta.concrete_fields
                                        if f.name not in ("id", "rates_version")])
                # The currency is part of every compiled entry.
                operator_rates_changed(operator_ids=[obj.pk])
            else:
                obj.save()

    @admin.action(description="Copy as a new operator", permissions=["add"])
    def copy_operator(self, request, queryset):
        """R5.1: each selected operator copied with its bands, tariffs, prices and codes."""
        for source in queryset:
            copy = operator_copy(source=source, name=operator_copy_name(source=source))
            self.message_user(request, f"Copied {source} as {copy}.", messages.SUCCESS)


@admin.register(TariffPlan)
class TariffPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


@admin.register(TimeBand)
class TimeBandAdmin(RatesChangedMixin, admin.ModelAdmin):
    list_display = ("name", "operator", "weekdays", "start_time", "end_time", "holidays",
                    "priority")
    list_filter = ("operator", "holidays")
    search_fields = ("name",)


class TariffPriceInline(admin.TabularInline):
    model = TariffPrice
    fields = ("plan", "band", "price_per_minute", "connection_fee")
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:
            # Only the tariff's own operator's bands price it.
            band = formset.form.base_fields["band"]
            band.queryset = band.queryset.filter(operator_id=obj.operator_id)
        return formset


class DescriptionForm(forms.Form):
    description = forms.CharField(
        label="Description for personal accounts", required=False,
        max_length=Tariff._meta.get_field("account_description").max_length)


class MoveForm(forms.Form):
    new_date = forms.DateField(label="New valid-from date", help_text="YYYY-MM-DD")


class ConfirmForm(forms.Form):
    pass


@admin.register(Tariff)
class TariffAdmin(RatesChangedMixin, admin.ModelAdmin):
    list_display = ("name", "operator", "direction", "call_type", "valid_from", "valid_to",
                    "first_interval", "next_interval", "account_description")
    list_filter = ("operator", "direction", "call_type")
    search_fields = ("name", "account_description")
    date_hierarchy = "valid_from"
    inlines = [TariffPriceInline]
    actions = ["set_account_description", "move_valid_from", "delete_valid_from"]

    # --- R5.4 bulk operations: they apply to *every* tariff of the selected tariffs'
    # operators and valid-from dates (the original's "all tariffs valid from a date"),
    # shown on a confirmation page before anything is written.

    @admin.action(description="Set the personal-account description of all tariffs valid "
                              "from the same date", permissions=["change"])
    def set_account_description(self, request, queryset):
        def apply(form, scopes):
            return sum(tariffs_set_account_description(
                valid_from=day, description=form.cleaned_data["description"], operator=op)
                for op, day, _ in scopes), "Set the description of {n} tariffs."
        return self._bulk(request, queryset, DescriptionForm, apply, action="set_account_description",
                          title="Set the description for personal accounts",
                          submit="Set the description")

    @admin.action(description="Move all tariffs valid from the same date to another date",
                  permissions=["change"])
    def move_valid_from(self, request, queryset):
        def apply(form, scopes):
            return sum(tariffs_move_valid_from(old=day, new=form.cleaned_data["new_date"],
                                               operator=op)
                       for op, day, _ in scopes), "Moved {n} tariffs (and their codes)."
        return self._bulk(request, queryset, MoveForm, apply, action="move_valid_from",
                          title="Move the valid-from date", submit="Move")

    @admin.action(description="Delete all tariffs valid from the same date",
                  permissions=["delete"])
    def delete_valid_from(self, request, queryset):
        def apply(form, scopes):
            return sum(tariffs_delete_valid_from(valid_from=day, operator=op)
                       for op, day, _ in scopes), "Deleted {n} tariffs with their prices and codes."
        return self._bulk(request, queryset, ConfirmForm, apply, action="delete_valid_from",
                          title="Delete tariffs with their prices and codes", submit="Delete")

    def _scopes(self, queryset) -> list[tuple[Operator, object, int]]:
        """(operator, valid-from date, how many tariffs) for each pair in the selection."""
        pairs = set(queryset.order_by().values_list("operator_id", "valid_from").distinct())
        operators = Operator.objects.in_bulk({op for op, _ in pairs})
        counts = Counter(Tariff.objects.filter(
            operator_id__in=operators, valid_from__in={d for _, d in pairs}).values_list(
            "operator_id", "valid_from"))
        return [(operators[op], day, counts[op, day])
                for op, day in sorted(pairs, key=lambda p: (operators[p[0]].name, p[1]))]

    def _bulk(self, request, queryset, form_class, apply, *, action, title, submit):
        scopes = self._scopes(queryset)
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                try:
                    with transaction.atomic():  # every scope, or none
                        count, message = apply(form, scopes)
                except (ValueError, ValidationError) as exc:
                    self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)
                    return None
                self.message_user(request, message.format(n=count), messages.SUCCESS)
                return None
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "title": title, "opts": self.model._meta, "form": form, "scopes": scopes,
            "action": action, "submit": submit,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/tariffs/tariff/bulk_action.html", context)


@admin.register(PhoneCode)
class PhoneCodeAdmin(RatesChangedMixin, admin.ModelAdmin):
    list_display = ("code", "name", "operator", "tariff", "call_type", "valid_from", "valid_to")
    # By the tariff's operator: codes have no index of their own by operator.
    list_filter = ("tariff__operator", "call_type")
    search_fields = ("code", "name")
    list_select_related = ("operator", "tariff")
    raw_id_fields = ("tariff",)
