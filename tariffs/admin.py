from django.contrib import admin

from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ("name", "currency")
    search_fields = ("name",)


@admin.register(TariffPlan)
class TariffPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


class TariffPriceInline(admin.TabularInline):
    model = TariffPrice
    extra = 0


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ("name", "operator", "direction", "call_type", "valid_from", "valid_to",
                    "first_interval", "next_interval", "account_description")
    list_filter = ("operator", "direction", "call_type")
    search_fields = ("name", "account_description")
    date_hierarchy = "valid_from"
    inlines = [TariffPriceInline]


@admin.register(PhoneCode)
class PhoneCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "operator", "tariff", "call_type", "valid_from", "valid_to")
    list_filter = ("operator", "call_type")
    search_fields = ("code", "name")
    list_select_related = ("operator", "tariff")
    raw_id_fields = ("tariff",)
