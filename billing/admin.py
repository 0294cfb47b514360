from django.contrib import admin, messages
from django.db import transaction

from billing.models import (
    Call,
    Charge,
    Device,
    Holiday,
    Node,
    Payment,
    PhoneNumber,
    RecurringService,
    Route,
    Subscriber,
    SubscriberGroup,
)
from billing.rerating import RerateJob, rerate_job_create
from billing.tasks import rerate_batch


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("name", "country")
    search_fields = ("name",)


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("name", "node", "type", "timezone", "default_operator", "default_plan")
    list_filter = ("node", "type")
    search_fields = ("name",)
    inlines = [RouteInline]
    fieldsets = (
        (None, {"fields": ("node", "name", "type", "timezone")}),
        ("Dial plan", {"fields": ("access_code", "national_prefix", "international_prefix",
                                  "country_code", "area_code", "extension_length",
                                  "extension_pattern", "service_numbers",
                                  "auth_code_position", "auth_code_length")}),
        ("Rating", {"fields": ("default_operator", "default_plan")}),
    )


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ("name", "device", "kind", "operator")
    list_filter = ("device", "kind", "operator")


@admin.register(SubscriberGroup)
class SubscriberGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "node", "parent")
    list_filter = ("node",)
    search_fields = ("name",)


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ("full_name", "account_number", "group", "type", "plan")
    list_filter = ("type", "group", "plan")
    search_fields = ("full_name", "account_number", "contract_number", "numbers__dn")
    inlines = [PhoneNumberInline]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ("dn", "device", "subscriber", "valid_from", "valid_to")
    list_filter = ("device",)
    search_fields = ("dn", "subscriber__full_name")
    list_select_related = ("device", "subscriber")


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ("start", "device", "extension", "dialled", "direction", "call_type",
                    "duration", "cost", "currency")
    list_filter = ("device", "direction", "call_type")
    search_fields = ("extension", "dialled", "normalized", "source_key")
    date_hierarchy = "start"
    list_select_related = ("device",)
    raw_id_fields = ("subscriber", "tariff", "route")
    actions = ["rerate_selected"]

    @admin.action(description="Rate the selected calls again", permissions=["change"])
    def rerate_selected(self, request, queryset):
        """R4.5: the selected calls, rated again as a job of the `billing.rerate_batch` task."""
        ids = list(queryset.values_list("id", flat=True))
        job = rerate_job_create(ids=ids)
        transaction.on_commit(lambda: rerate_batch.delay(job.id))
        # Without a broker the task has already run (no transaction is open here); with
        # workers it runs in the background and its totals are written to the job's file.
        job = RerateJob.load(job.id)
        if not job.done:
            self.message_user(request, f"Re-rating {len(ids)} selected calls in the background "
                                       f"(job {job.id}, totals in {job.path}).", messages.INFO)
            return
        result = job.result().as_dict()
        difference = ", ".join(f"{amount} {cur}" for cur, amount in result["difference"].items())
        self.message_user(request, (
            f"Rated {result['examined']} calls again (job {job.id}): {result['changed']} "
            f"changed, cost difference {difference or '0'}, {result['newly_priced']} newly "
            f"priced, {result['unpriced']} no longer priced."), messages.SUCCESS)


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    """R4.2: a node's own holidays, on top of its country's public ones."""

    list_display = ("date", "name", "node")
    list_filter = ("node",)
    date_hierarchy = "date"


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    """R7.1: charges are computed from the rated calls; the admin shows them only."""

    list_display = ("subscriber", "period_start", "service_name", "amount", "count", "currency",
                    "kind", "updated_at")
    list_filter = ("kind", "currency", "period_start")
    search_fields = ("subscriber__full_name", "subscriber__account_number", "service_name")
    list_select_related = ("subscriber",)
    readonly_fields = [f.name for f in Charge._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """R7.2: payments into personal accounts."""

    list_display = ("subscriber", "date", "amount", "type", "bank", "created_at")
    list_filter = ("type", "date")
    search_fields = ("subscriber__full_name", "subscriber__account_number", "bank")
    list_select_related = ("subscriber",)
    raw_id_fields = ("subscriber",)
    date_hierarchy = "date"


@admin.register(RecurringService)
class RecurringServiceAdmin(admin.ModelAdmin):
    """R7.1: monthly fees, per plan or per subscriber."""

    list_display = ("name", "amount", "currency", "plan", "subscriber", "valid_from", "valid_to")
    list_filter = ("plan", "currency")
    raw_id_fields = ("subscriber",)
